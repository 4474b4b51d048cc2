# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""GPU placement of the vLLM servers of a docker host and its memory budget
(docs/contracts.md "GPU placement").

vLLM takes ``--gpu-memory-utilization`` of the memory of every GPU it is given when it
starts, and fails when that memory is not free: two colors on one GPU at 0.90 each leave
the second unable to start. These pure functions place each server (a color in
independent mode, the one shared server in shared mode) on its host's GPUs, and refuse a
placement whose shares on one GPU add up to more than 1.0, or a server that would start
next to a running one that leaves it too little, naming host, GPU, servers, shares and
the fix.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

COLORS = ('blue', 'green')
SHARED = 'shared'
SHARE_ARG = '--gpu-memory-utilization'
# What vLLM takes when the command does not say.
VLLM_DEFAULT_SHARE = 0.9
# Float sums: 0.3 + 0.3 + 0.4 fits.
EPSILON = 1e-9
# Suggested shares keep the usual 10 % headroom of a GPU for CUDA contexts.
HEADROOM = 0.9
GPUS_VAR = 'inference_vllm_color_gpus'
SHARES_VAR = 'inference_vllm_color_gpu_memory_utilization'


class GpuBudgetError(Exception):
    """The input is not a mapping of hosts to their settings."""


def gpu_ids(value):
    """GPU ids as strings (Docker's device_ids), in order, without repeats; "0,1" is two."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = value
    else:
        items = str(value).split(',')
    ids = []
    for item in items:
        text = str(item).strip()
        if text and text not in ids:
            ids.append(text)
    return ids


def share_of(value):
    """A share as a float, or None when it is not a number."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def id_list(ids):
    """['0', '1'] as YAML flow text."""
    return '[%s]' % ', '.join('"%s"' % i for i in ids)


def fmt(number):
    """0.9 -> '0.9', 1.8000000000000003 -> '1.8'."""
    return '%g' % round(number, 4)


def label(server):
    """How a message names a server."""
    return 'the shared server' if server == SHARED else server


def share_problem(host, server, value):
    """A message when ``value`` is not a share in (0, 1], else None."""
    share = share_of(value)
    if share is not None and 0 < share <= 1:
        return None
    var = 'inference_vllm_gpu_memory_utilization' if server == SHARED else SHARES_VAR
    return ('On %s, %s has GPU memory share %r: give %s a fraction in (0, 1] of each GPU\'s memory '
            '(e.g. 0.9 alone on a GPU, 0.45 for two servers on one).' % (host, label(server), value, var))


def _host_colors(host, settings):
    """The colors placed on this host: ``colors`` (a fleet: llmops.bluegreen.fleet), else both."""
    colors = settings.get('colors')
    if colors is None:
        return COLORS
    if not isinstance(colors, (list, tuple)) or [c for c in colors if c not in COLORS]:
        raise GpuBudgetError('the colors of %s must be a list of blue and green, got %r' % (host, colors))
    return tuple(colors)


def place(host, settings):
    """The servers of one host, ``({server: {'gpus': [...], 'share': value}}, problems)``.

    Independent mode: blue and green (or the host's ``colors`` in a fleet, where each color
    has its own hosts), each from its entry in the per-color maps, else from the single
    settings; shared mode: one server from the single settings.
    """
    problems = []
    maps = {}
    for var, key in ((GPUS_VAR, 'color_gpus'), (SHARES_VAR, 'color_shares')):
        mapping = settings.get(key) or {}
        if not isinstance(mapping, dict):
            problems.append('On %s, %s must map colors to values (e.g. {blue: ..., green: ...}), got %r.'
                            % (host, var, mapping))
            mapping = {}
        unknown = sorted(str(name) for name in mapping if name not in COLORS)
        if unknown:
            problems.append('On %s, %s names %s, which is not a color: use blue and green.'
                            % (host, var, ', '.join(unknown)))
        maps[key] = mapping
    if settings.get('mode', 'independent') == SHARED:
        wanted = {SHARED: (settings.get('gpus'), settings.get('share'))}
    else:
        wanted = dict((color, (maps['color_gpus'].get(color, settings.get('gpus')),
                               maps['color_shares'].get(color, settings.get('share'))))
                      for color in COLORS if color in _host_colors(host, settings))
    servers = {}
    for server in sorted(wanted):
        gpus, share = wanted[server]
        problem = share_problem(host, server, share)
        if problem:
            problems.append(problem)
        if not gpu_ids(gpus):
            problems.append('On %s, %s has no GPU: give it device ids (%s).'
                            % (host, label(server), 'inference_vllm_gpus' if server == SHARED else GPUS_VAR))
        servers[server] = {'gpus': gpu_ids(gpus), 'share': share_of(share) if problem is None else share}
    return servers, problems


def running_placement(container):
    """``{'gpus', 'share', 'name'}`` of a running vLLM container from its docker inspect, else None.

    None when it does not run or was given no GPU by id (a llama.cpp server, for one).
    """
    if not isinstance(container, dict) or not (container.get('State') or {}).get('Running'):
        return None
    ids = []
    for request in (container.get('HostConfig') or {}).get('DeviceRequests') or []:
        ids.extend(i for i in gpu_ids((request or {}).get('DeviceIDs')) if i not in ids)
    if not ids:
        return None
    share = VLLM_DEFAULT_SHARE
    command = [str(arg) for arg in (container.get('Config') or {}).get('Cmd') or []]
    for index, arg in enumerate(command):
        if arg == SHARE_ARG and index + 1 < len(command):
            share = share_of(command[index + 1])
        elif arg.startswith(SHARE_ARG + '='):
            share = share_of(arg.split('=', 1)[1])
    return {'gpus': ids, 'share': VLLM_DEFAULT_SHARE if share is None else share,
            'name': str(container.get('Name') or '').lstrip('/')}


def usage_of(servers):
    """``{gpu: {server: share}}`` of valid servers, GPUs and servers in order."""
    usage = {}
    for server in sorted(servers):
        for gpu in servers[server]['gpus']:
            usage.setdefault(gpu, {})[server] = servers[server]['share']
    return usage


def free_gpu(used):
    """The lowest numeric GPU id not in ``used``, or None when the host names GPUs otherwise (UUIDs)."""
    if not all(gpu.isdigit() for gpu in used):
        return None
    number = 0
    while str(number) in used:
        number += 1
    return str(number)


def even_share(count):
    """An equal share for ``count`` servers on one GPU, e.g. 0.45 for two."""
    return math.floor(HEADROOM / count * 100) / 100


def config_overflow(host, gpu, shares, servers, used):
    """The message for GPU ``gpu`` of ``host`` whose configured ``shares`` ({server: share}) exceed it."""
    names = list(shares)
    total = sum(shares.values())
    text = ('On %s, GPU %s would hold %s = %s of its memory: the vLLM servers placed on one GPU may take at '
            'most 1.0 together, else the second cannot start.'
            % (host, gpu, ' + '.join('%s %s' % (n, fmt(shares[n])) for n in names), fmt(total)))
    fixes = []
    mover = [n for n in names if n in COLORS][-1:]
    free = free_gpu(used)
    if mover and free is not None and len(servers[mover[0]]['gpus']) == 1:
        example = ', '.join('%s: %s' % (c, id_list([free] if c == mover[0] else servers[c]['gpus']))
                            for c in COLORS if c in servers)
        fixes.append('give %s GPU %s with %s (e.g. {%s})' % (mover[0], free, GPUS_VAR, example))
    elif mover:
        fixes.append('give %s other GPUs with %s' % (mover[0], GPUS_VAR))
    each = even_share(len(names))
    fixes.append('lower the shares to %s each with %s (e.g. {%s}), if the model and its cache fit in that'
                 % (fmt(each), SHARES_VAR, ', '.join('%s: %s' % (n, fmt(each)) for n in names)))
    return '%s Fix: %s; per host in its host_vars.' % (text, ', or '.join(fixes))


def start_overflow(host, gpu, starting, desired, running):
    """The message when ``starting`` (share ``desired``) does not fit next to the ``running`` servers."""
    names = sorted(running)
    held = ' and '.join('%s, running as %s, holds %s' % (label(n), running[n]['name'] or n, fmt(running[n]['share']))
                        for n in names)
    total = desired + sum(running[n]['share'] for n in names)
    return ('On %s, %s cannot start on GPU %s with %s of its memory: %s (%s = %s, at most 1.0). A running server '
            'keeps the share it was started with until it is replaced. Fix: give %s a GPU that %s does not use (%s), '
            'or stop that server first if it serves no traffic (playbooks/retire.yml; retire_mode=cold stops only '
            'its inference server).'
            % (host, label(starting), gpu, fmt(desired), held,
               ' + '.join([fmt(desired)] + [fmt(running[n]['share']) for n in names]), fmt(total),
               label(starting), ' or '.join(label(n) for n in names),
               'inference_vllm_gpus' if starting == SHARED else GPUS_VAR))


def check_host(host, settings):
    """``(servers, usage, problems)`` of one host."""
    servers, problems = place(host, settings)
    valid = dict((n, s) for n, s in servers.items() if share_problem(host, n, s['share']) is None and s['gpus'])
    usage = usage_of(valid)
    used = set(usage)
    for gpu in sorted(usage):
        if sum(usage[gpu].values()) > 1 + EPSILON:
            problems.append(config_overflow(host, gpu, usage[gpu], servers, used))
    starting = settings.get('starting')
    if problems or starting not in valid:
        return servers, usage, problems
    # The configuration fits; the server about to start must also fit next to the others as they run now.
    running = {}
    for name, container in sorted((settings.get('running') or {}).items()):
        placed = running_placement(container)
        if name != starting and placed is not None:
            running[name] = placed
    for gpu in valid[starting]['gpus']:
        beside = dict((n, p) for n, p in running.items() if gpu in p['gpus'])
        if beside and valid[starting]['share'] + sum(p['share'] for p in beside.values()) > 1 + EPSILON:
            problems.append(start_overflow(host, gpu, starting, valid[starting]['share'], beside))
    return servers, usage, problems


def summary_of(usage_by_host):
    """One line per host: each GPU, its servers and their sum."""
    lines = []
    for host in sorted(usage_by_host):
        gpus = []
        for gpu, shares in sorted(usage_by_host[host].items()):
            held = ', '.join('%s %s' % (n, fmt(s)) for n, s in shares.items())
            gpus.append('GPU %s: %s (%s of 1.0)' % (gpu, held, fmt(sum(shares.values()))))
        lines.append('%s: %s' % (host, '; '.join(gpus) or 'no GPU'))
    return ' | '.join(lines)


def budget(hosts):
    """Place the vLLM servers of every host and check each GPU's memory budget. Pure.

    ``hosts``: ``{host: settings}``; settings keys ``mode`` (independent or shared), ``gpus`` and
    ``share`` (the single settings), ``color_gpus`` and ``color_shares`` (per color), ``colors`` (the
    colors on this host in a fleet; default both), and optionally
    ``starting`` (the server about to start) with ``running`` (``{server: docker inspect}`` of the
    host's other vLLM containers).

    Returns ``ok``, ``problems`` (one message each), ``message`` (all of them, or the summary),
    ``summary``, ``placement`` (``{host: {server: {gpus, share}}}``) and ``usage``
    (``{host: {gpu: {server: share}}}``).
    """
    if not isinstance(hosts, dict):
        raise GpuBudgetError('the GPU budget takes {host: settings}, got %s' % type(hosts).__name__)
    placement, usage, problems = {}, {}, []
    for host in sorted(hosts, key=str):
        settings = hosts[host]
        if not isinstance(settings, dict):
            raise GpuBudgetError('the GPU settings of %s must be a dict, got %s' % (host, type(settings).__name__))
        placement[host], usage[host], found = check_host(host, settings)
        problems.extend(found)
    summary = summary_of(usage)
    return {'ok': not problems, 'problems': problems, 'summary': summary,
            'message': ('GPU placement refused. ' + ' '.join(problems)) if problems else 'GPU budget fits: ' + summary,
            'placement': placement, 'usage': usage}
