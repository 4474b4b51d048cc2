# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A color's desired spec and its release fingerprint (docs/contracts.md "Color spec").

The spec is what Docker is given for a color's containers (their definitions, with each
image resolved to its ID), the content digests of every host path they mount (model
files, documents), keyed digests of the secrets they read, and the KB version. Its
sha256 over canonical JSON, with the color's own names and GPU placement replaced by
markers, is the release fingerprint: the same release has the same fingerprint on blue and on green,
and any change to what a color would run changes it. Pure functions; I/O is limited to
reading the mounted files (with a stat-keyed digest cache).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import hashlib
import hmac
import json
import os
import stat

from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import FingerprintError, file_sha256

SPEC_SCHEMA = 1
COLOR_MARKER = '{color}'
RELEASE_LABEL = 'llmops.release'
RELEASE_ENV = 'QA_RELEASE'
# Every key a container definition may use; the llmops.bluegreen.container role applies
# exactly these, so nothing in a spec is left unapplied and nothing applied is unhashed.
CONTAINER_KEYS = frozenset([
    'name', 'image', 'command', 'entrypoint', 'env', 'labels', 'mounts', 'device_requests',
    'shm_size', 'memory', 'memory_swap', 'cpus', 'pids_limit', 'user', 'read_only', 'tmpfs',
    'cap_drop', 'cap_add', 'security_opts', 'sysctls', 'ulimits', 'restart_policy', 'stop_timeout',
    'stop_signal', 'networks', 'network_mode', 'published_ports', 'healthcheck', 'comparisons',
    'working_dir', 'init', 'dns_opts',
])


# Where a color runs on its host's GPUs (device ids, vLLM's memory share) is the color's own,
# like its names: the same release on GPU 0 for blue and GPU 1 for green has one fingerprint.
PLACEMENT_MARKER = '{placement}'
PLACEMENT_ARGS = ('--gpu-memory-utilization',)


class SpecError(Exception):
    """A definition or a mounted path cannot be part of a spec; the message names the fix."""


def canonical(data):
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(data, sort_keys=True, separators=(',', ':'), ensure_ascii=False)


def normalize(data, service, color):
    """``data`` with the color's own names (containers, QA_COLOR, labels) replaced by a marker."""
    own = ['%s-qa-%s' % (service, color), '%s-llm-%s' % (service, color)]

    def walk(value):
        if isinstance(value, dict):
            return dict((walk(k), walk(v)) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        if isinstance(value, str):
            if value == color:
                return COLOR_MARKER
            for name in own:
                value = value.replace(name, name[:-len(color)] + COLOR_MARKER)
        return value
    return walk(data)


def mask_placement(spec):
    """A copy of ``spec`` with each container's GPU placement replaced by a marker.

    The placement is the ``device_ids`` of its ``device_requests`` and the value of each
    ``PLACEMENT_ARGS`` option in its command (``--opt value`` or ``--opt=value``).
    """
    masked = copy.deepcopy(spec)
    for definition in (masked.get('containers') or {}).values():
        if not isinstance(definition, dict):
            continue
        for request in definition.get('device_requests') or []:
            if isinstance(request, dict) and 'device_ids' in request:
                request['device_ids'] = PLACEMENT_MARKER
        command = definition.get('command')
        if isinstance(command, list):
            for index, arg in enumerate(command):
                arg = str(arg)
                if arg in PLACEMENT_ARGS and index + 1 < len(command):
                    command[index + 1] = PLACEMENT_MARKER
                elif arg.split('=', 1)[0] in PLACEMENT_ARGS and '=' in arg:
                    command[index] = arg.split('=', 1)[0] + '=' + PLACEMENT_MARKER
    return masked


def fingerprint(spec, service, color):
    """sha256 hex of the color-normalized canonical spec, its GPU placement masked."""
    text = canonical(normalize(mask_placement(spec), service, color))
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def check_definition(key, definition):
    """Refuse definitions the container role would not apply whole."""
    if not isinstance(definition, dict):
        raise SpecError('containers.%s must be a container definition (dict), got %r' % (key, type(definition).__name__))
    unknown = sorted(set(definition) - CONTAINER_KEYS)
    if unknown:
        raise SpecError('containers.%s uses %s, which the llmops.bluegreen.container role does not apply; '
                        'use one of: %s' % (key, ', '.join(unknown), ', '.join(sorted(CONTAINER_KEYS))))
    for name in ('name', 'image'):
        if not definition.get(name):
            raise SpecError('containers.%s has no %s' % (key, name))


def bind_sources(definition):
    """Host paths a definition bind-mounts, in order."""
    sources = []
    for mount in definition.get('mounts') or []:
        if isinstance(mount, dict) and mount.get('type', 'volume') == 'bind' and mount.get('source'):
            sources.append(mount['source'])
    return sources


def stamp(definition, release, env=False):
    """A copy of ``definition`` that carries the release fingerprint (label, and env for qa-api)."""
    stamped = copy.deepcopy(definition)
    stamped['labels'] = dict(stamped.get('labels') or {}, **{RELEASE_LABEL: release})
    if env:
        stamped['env'] = dict(stamped.get('env') or {}, **{RELEASE_ENV: release})
    return stamped


def keyed_digest(key, content):
    """HMAC-SHA256 of a secret, so the spec shows that it changed but never what it is."""
    if not isinstance(content, bytes):
        content = ('' if content is None else str(content)).encode('utf-8')
    return 'hmac-sha256:' + hmac.new(key, content, hashlib.sha256).hexdigest()


class DigestCache(object):
    """sha256 of files keyed by (path, size, mtime_ns, inode): a large model is hashed once."""

    def __init__(self, data=None):
        self.data = dict(data or {})
        self.used = {}
        self.hashed = 0

    def file_digest(self, path):
        info = os.stat(path)
        key = '%s|%d|%d|%d' % (path, info.st_size, info.st_mtime_ns, info.st_ino)
        digest = self.data.get(key)
        if digest is None:
            digest = file_sha256(path)
            self.hashed += info.st_size
        self.used[key] = digest
        return digest


def path_digest(path, cache):
    """Content digest of a host path: a file's sha256, or a directory's fingerprint.

    The directory formula is docs/contracts.md "Fingerprint" over every file (symlinks
    followed, as the container sees them through the bind mount).
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise SpecError('mounted path %s cannot be read (%s): create it or fix the variable that names it'
                        % (path, exc.strerror or exc))
    try:
        return _digest(path, info, cache)
    except FingerprintError as exc:
        raise SpecError('%s: fix its permissions or the variable that names it' % exc)


def _digest(path, info, cache):
    if stat.S_ISREG(info.st_mode):
        return 'sha256:' + cache.file_digest(path)
    if not stat.S_ISDIR(info.st_mode):
        raise SpecError('mounted path %s is neither a file nor a directory' % path)
    entries = []
    for root, dirs, files in os.walk(path, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            if not os.path.isfile(full):
                continue
            rel = os.path.relpath(full, path).replace(os.sep, '/')
            entries.append((rel, cache.file_digest(full)))
    text = ''.join('%s\0%s\n' % (rel, digest) for rel, digest in sorted(entries))
    return 'tree:' + hashlib.sha256(text.encode('utf-8')).hexdigest()


def build_spec(service, color, containers, image_ids, mount_digests, secret_digests, kb, extra=None):
    """The spec dict (before normalization) from resolved inputs."""
    resolved = {}
    for key in sorted(containers):
        definition = containers[key]
        if definition is None:
            resolved[key] = None
            continue
        item = copy.deepcopy(definition)
        item['image_id'] = image_ids.get(definition['image'])
        resolved[key] = item
    return {
        'schema': SPEC_SCHEMA,
        'service': service,
        'color': color,
        'containers': resolved,
        'mounts': dict(mount_digests),
        'secrets': dict(secret_digests),
        'kb': kb or {},
        'extra': extra or {},
    }


def describe_change(old_spec, new_spec, service, old_color, new_color, limit=12):
    """Dotted paths that differ between two specs (color-normalized), for the plan's message."""
    if not old_spec:
        return ['(no spec recorded for the active color)']
    changes = []

    def walk(prefix, a, b):
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk('%s.%s' % (prefix, key) if prefix else str(key), a.get(key), b.get(key))
        elif a != b:
            changes.append(prefix or '(root)')
    walk('', normalize(mask_placement(old_spec), service, old_color),
         normalize(mask_placement(new_spec), service, new_color))
    return changes[:limit] + (['... %d more' % (len(changes) - limit)] if len(changes) > limit else [])


def merge_host_digests(hosts, shipped, check_mode=False):
    """One set of image IDs and mount digests for a color whose containers run on other hosts.

    ``hosts``: what llmops.bluegreen.color_digests found on each host of the color, a list of
    ``{'host', 'image_ids': {image: id or None}, 'mounts': {path: digest or None}}``.
    ``shipped``: ``{path: digest}`` of the paths the release copies from this host to the color's
    hosts (a KB version): their digest is this copy's; a host's own copy must be the same.
    Every other path and every image must be on every host, alike: what runs is what is hashed.
    Returns (image_ids, mounts, warnings); SpecError names the host, the path or image, and the fix.
    In check mode a missing path is ``absent`` and a missing image None, each with a warning.
    """
    if not hosts:
        raise SpecError('no host of the color reported its digests: give each host of the color to color_digests')
    warnings = []
    ids, mounts = {}, {}
    for image in sorted(set(i for h in hosts for i in h['image_ids'])):
        found = dict((h['host'], h['image_ids'].get(image)) for h in hosts)
        missing = sorted(host for host, value in found.items() if value is None)
        if missing:
            if not check_mode:
                raise SpecError('image %s is not on %s: ship it there first (role llmops.bluegreen.images)'
                                % (image, ', '.join(missing)))
            warnings.append('check mode: image %s is not on %s yet; its ID is unknown' % (image, ', '.join(missing)))
        present = set(value for value in found.values() if value is not None)
        if len(present) > 1:
            raise SpecError('image %s has different IDs on the hosts of the color (%s): ship the same image to '
                            'every host' % (image, ', '.join('%s %s' % (h, v[:19]) for h, v in sorted(found.items()) if v)))
        ids[image] = present.pop() if present and not missing else None
    for path in sorted(set(p for h in hosts for p in h['mounts']) | set(shipped)):
        found = dict((h['host'], h['mounts'].get(path)) for h in hosts)
        if path in shipped:
            differ = sorted(host for host, value in found.items() if value is not None and value != shipped[path])
            if differ:
                raise SpecError('%s on %s differs from the copy the release ships from this host: remove it there '
                                'so the release copies it again' % (path, ', '.join(differ)))
            mounts[path] = shipped[path]
            continue
        missing = sorted(host for host, value in found.items() if value is None)
        if missing:
            if not check_mode:
                raise SpecError('mounted path %s does not exist on %s: create it there or fix the variable that '
                                'names it' % (path, ', '.join(missing)))
            warnings.append('check mode: %s does not exist on %s yet; the spec names it by path only'
                            % (path, ', '.join(missing)))
            mounts[path] = 'absent'
            continue
        if len(set(found.values())) > 1:
            raise SpecError('%s differs between the hosts of the color (%s): make it the same on every host'
                            % (path, ', '.join('%s %s' % (h, v[:19]) for h, v in sorted(found.items()))))
        mounts[path] = found[hosts[0]['host']]
    return ids, mounts, warnings
