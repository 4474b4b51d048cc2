# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the gateway serves against what ``state.json`` says (bluegreen_reconcile), without I/O.

The served routing is read from two sources that must agree: the rendered
``upstreams.conf`` (its ``# weights:`` line and its ``upstream llmops_<color>``
blocks, as _upstreams.render writes them) and requests through the gateway (the
``X-QA-Color`` header and the ``/health`` JSON's ``color``). When they agree, the
state is compared with it; a mismatch is repaired to what is served, with the
same rules a switch uses (_switch.new_roles and new_state).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.llmops.bluegreen.plugins.module_utils._state import COLORS
from ansible_collections.llmops.bluegreen.plugins.module_utils._switch import (
    audit_colors,
    health_record,
    new_roles,
    new_state,
    targets,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._upstreams import BOOTSTRAP, FAILOVER, KEEPALIVE, render

_UPSTREAM_RE = re.compile(r'^\s*upstream\s+llmops_([A-Za-z0-9_]+)\s*\{(.*?)\}', re.M | re.S)
_SERVER_RE = re.compile(r'^\s*server\s+([^\s;]+)[^;]*;', re.M)
_WEIGHTS_RE = re.compile(r'^#\s*weights:(.*)$', re.M)
NONE = 'none'  # the color the gateway names before any switch (bootstrap config)


class ReconcileError(Exception):
    """What the gateway serves cannot be determined; the message names both sources and the fix."""


class StrayTraffic(ReconcileError):
    """Requests were served by a color the file gives no traffic: ``where``, ``url``, ``strays`` ({color: n}).

    Two causes look alike to a client: nginx failing clients over to the other color (the
    routed color's servers do not answer, or did not a moment ago: nginx keeps a server that
    failed out for its fail_timeout) and a file that nginx has not loaded. ``stray_text``
    names the cause once the caller has told them apart.
    """

    def __init__(self, where, url, strays):
        self.where, self.url, self.strays = where, url, strays
        ReconcileError.__init__(self, stray_text(self))

    def summary(self):
        return '%s, but requests to %s were served by %s' % (
            self.where, self.url, ', '.join('%s (%d)' % (color, self.strays[color]) for color in sorted(self.strays)))


NOT_LOADED = ('the file was changed without a reload or a reload failed. Check it (nginx -t in the gateway '
              'container), then reload nginx to serve the file, or put upstreams.conf.bak back and reload, and rerun')


def stray_text(stray, down=None, loaded=None):
    """The message for StrayTraffic ``stray``.

    ``down``: ``{server: error}`` of the routed color's servers that do not answer from the
    gateway (clients are failed over). ``loaded``: False when requests with the operator key
    (never failed over) were also served by the stray colors: nginx serves another file.
    Neither: both causes are named.
    """
    text = 'cannot tell what the gateway serves: %s; ' % stray.summary()
    if down:
        return text + ('clients are failed over to the other color because %s; start those containers (or roll back '
                       'to the color that serves), then rerun'
                       % '; '.join('%s is %s' % (server, down[server]) for server in sorted(down)))
    if loaded is False:
        return text + 'requests with the operator key (never failed over) were too, so ' + NOT_LOADED
    return text + ('either the servers of the routed color do not answer and clients are failed over to the other '
                   'color (start its containers, or roll back), or ' + NOT_LOADED)


def parse_upstreams(text):
    """``{'weights': {color: int}, 'upstreams': {color: [server]}}`` of an upstreams.conf.

    The bootstrap file (no upstream block) routes nothing: both dicts are empty. Raises
    ReconcileError for a file this collection did not render.
    """
    upstreams = {}
    for match in _UPSTREAM_RE.finditer(text or ''):
        color = match.group(1)
        if color.endswith(FAILOVER) and color[:-len(FAILOVER)] in COLORS:
            continue  # a color's servers with the other's as backup: no routing of its own
        if color not in COLORS:
            raise ReconcileError('upstreams.conf defines upstream llmops_%s: not a color (%s)' % (color, '/'.join(COLORS)))
        upstreams[color] = _SERVER_RE.findall(match.group(2))
        if not upstreams[color]:
            raise ReconcileError('upstreams.conf: upstream llmops_%s has no server line' % color)
    found = _WEIGHTS_RE.search(text or '')
    if not upstreams and not found:
        return {'weights': {}, 'upstreams': {}}
    if not found:
        raise ReconcileError('upstreams.conf has upstream blocks but no "# weights:" line; it was not rendered '
                             'by bluegreen_switch (restore upstreams.conf.bak or switch again)')
    weights = {}
    for item in found.group(1).split():
        color, dummy, value = item.partition('=')
        if color not in upstreams or not value.isdigit():
            raise ReconcileError('upstreams.conf: "# weights:" entry %r names no upstream block or no percent' % item)
        weights[color] = int(value)
    if sorted(weights) != sorted(upstreams) or sum(weights.values()) != 100:
        raise ReconcileError('upstreams.conf: "# weights:%s" does not give every upstream a weight adding up to 100'
                             % found.group(1))
    return {'weights': weights, 'upstreams': upstreams}


def routing_text(weights):
    """``blue=100 green=0`` (or ``no color`` for the bootstrap)."""
    if not weights:
        return 'no color'
    return ' '.join('%s=%d' % (color, weights[color]) for color in sorted(weights))


def served(conf, probes, url='the gateway'):
    """The routing nginx serves: ``conf`` (parse_upstreams) confirmed by ``probes``.

    ``probes``: ``(status, header color, body color, error)`` of requests without a color
    header, each on a new connection. Every answering request must name one color in its
    header and body, and that color must get traffic in ``conf``; at least one must answer.
    Returns ``{'weights', 'upstreams', 'active_colors', 'seen': {color: count}}``.
    """
    routed = targets(conf['weights']) or [NONE]
    seen, errors = {}, []
    for status, header, body, error in probes:
        if status is None:
            errors.append(error or 'no answer')
            continue
        if body is not None and body != header:
            raise ReconcileError('the gateway at %s answered with header color %s but a /health of color %s; '
                                 'a color is wired to the wrong container: check the upstream servers in '
                                 'upstreams.conf' % (url, header, body))
        seen[header] = seen.get(header, 0) + 1
    where = 'upstreams.conf routes %s' % routing_text(conf['weights'])
    if not seen:
        raise ReconcileError('cannot tell what the gateway serves: %s, but every request to %s failed (%s); start '
                             'the gateway (docker start, or rerun the llmops.bluegreen.gateway role), then rerun'
                             % (where, url, errors[-1] if errors else 'no request made'))
    strays = dict((color, seen[color]) for color in seen if color not in routed)
    if strays:
        raise StrayTraffic(where, url, strays)
    return {'weights': dict(conf['weights']), 'upstreams': dict(conf['upstreams']),
            'active_colors': [c for c in routed if c != NONE], 'seen': seen}


def compare(state, routing, health):
    """Mismatches (texts) between ``state`` and what is served; ``[]`` when they agree.

    ``health``: ``{color: {server: /health}}`` of the colors with traffic. A color whose
    /health reports a release differing from its record is a mismatch (an empty or
    missing release in /health is not compared).
    """
    state = state or {}
    if not state and not routing['upstreams']:
        return []
    problems = []
    active = new_roles(state, routing['weights'])[0] if routing['weights'] else None
    if state.get('active') != active:
        problems.append('state.json names active %s, the gateway serves %s'
                        % (state.get('active') or 'none', active or 'no color'))
    if (state.get('weights') or {}) != routing['weights']:
        problems.append('state.json has weights %s, the gateway routes %s'
                        % (routing_text(state.get('weights') or {}), routing_text(routing['weights'])))
    colors = state.get('colors') or {}
    for color in sorted(set(colors) | set(routing['upstreams'])):
        recorded = (colors.get(color) or {}).get('upstreams')
        if recorded != routing['upstreams'].get(color):
            problems.append('state.json has %s servers %s, upstreams.conf %s'
                            % (color, recorded, routing['upstreams'].get(color)))
    for color in sorted(health):
        for server in sorted(health[color]):
            release = health_record(health[color][server])['release']
            recorded = (colors.get(color) or {}).get('release')
            if release and release != recorded:
                problems.append('state.json records %s release %s, %s reports %s'
                                % (color, recorded, server, release))
    return problems


def repaired(service, state, routing, health, now):
    """The state.json that says what is served; records of served colors are refreshed from /health."""
    if not routing['weights']:
        # Nothing is routed (the gateway is back on its bootstrap): no color is deployed.
        return new_state(service, state, {}, {}, None, (state or {}).get('active') or (state or {}).get('previous'),
                         now=now)
    active, previous, dummy = new_roles(state, routing['weights'])
    return new_state(service, state, routing['upstreams'], routing['weights'], active, previous, health, None, now)


def audit_record(service, operator, state, after, problems, duration, now):
    """The audit line of a repair: ``from`` the active color state.json named, ``to`` the one served."""
    return {
        'time': now, 'service': service, 'operator': operator, 'action': 'reconcile',
        'from': (state or {}).get('active'), 'to': after.get('active'),
        'weights': after.get('weights'), 'colors': audit_colors(after),
        'before': {'active': (state or {}).get('active'), 'weights': (state or {}).get('weights'),
                   'serial': (state or {}).get('serial')},
        'mismatches': list(problems), 'serial': after['serial'],
        'result': 'ok', 'duration_s': round(duration, 3),
    }


_KEEPALIVE_RE = re.compile(r'^\s*keepalive\s+([0-9]+)\s*;', re.M)
_CANARY_RE = re.compile(r'map \$llmops_tester \$llmops_split_color \{[^}]*?^\s*1\s+([a-z]+)\s*;', re.M | re.S)


def without_servers(service, text, gone):
    """``upstreams.conf`` ``text`` without the servers in ``gone`` (their containers were removed).

    nginx resolves every server name when it loads a file, so one naming a removed container
    keeps the gateway from starting or reloading, and blocks the deploy that would repair it.
    A color left with no server is dropped and the one left takes all traffic (what clients
    failed over to it saw already); none left: the bootstrap file, nothing routed.
    Returns ``{'text', 'changed', 'dropped': {color: [server]}, 'weights'}``.
    """
    conf = parse_upstreams(text)
    gone = set(gone or [])
    left, dropped = {}, {}
    for color, servers in conf['upstreams'].items():
        for server in servers:
            (dropped if server in gone else left).setdefault(color, []).append(server)
    if not dropped:
        return {'text': text, 'changed': False, 'dropped': {}, 'weights': conf['weights']}
    if not left:
        return {'text': BOOTSTRAP, 'changed': True, 'dropped': dropped, 'weights': {}}
    weights = conf['weights'] if len(left) == len(conf['upstreams']) else dict((color, 100) for color in left)
    keepalive = _KEEPALIVE_RE.search(text)
    canary = _CANARY_RE.search(text)
    new = render(service, left, weights, int(keepalive.group(1)) if keepalive else KEEPALIVE,
                 canary=canary.group(1) if canary else None, failover=FAILOVER + ' {' in text)
    return {'text': new, 'changed': new != text, 'dropped': dropped, 'weights': weights}
