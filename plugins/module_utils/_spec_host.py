# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What a color's containers use on the host that runs them: image IDs, the content digests of
the paths they bind-mount, and the release each of their containers runs now.

Shared by color_spec (one host: everything local) and color_digests (a fleet: run on each host
of the color, merged by _spec.merge_host_digests on the gateway host).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible_collections.llmops.bluegreen.plugins.module_utils._atomic import atomic_write
from ansible_collections.llmops.bluegreen.plugins.module_utils._spec import (
    RELEASE_LABEL,
    DigestCache,
    bind_sources,
    path_digest,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import StateError, ensure_dir
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import read_json as read_state_json

try:
    from docker.errors import ImageNotFound, NotFound
except ImportError:  # the modules report the missing library; nothing here runs without it
    ImageNotFound = NotFound = None


def read_json(path, default):
    """A JSON file of the service directory, or ``default`` when it is absent or unreadable (a cache)."""
    try:
        data = read_state_json(path)
    except StateError:
        return default
    return default if data is None else data


def mounted_sources(definitions, secrets_dir):
    """Host paths the definitions bind-mount, once each, without the service's secret files
    (the spec takes their desired content, a keyed digest, instead)."""
    sources = []
    for definition in definitions:
        for source in bind_sources(definition):
            if not source.startswith(secrets_dir + '/') and source not in sources:
                sources.append(source)
    return sources


class HostDigests(object):
    """Digests of this host's paths, with the service's stat-keyed cache (a model is hashed once)."""

    def __init__(self, cache_path):
        self.cache_path = cache_path
        self.cache = DigestCache(read_json(cache_path, {}))

    def digest(self, path, missing_ok=False):
        """The path's content digest; None for a path that does not exist when missing_ok."""
        if missing_ok and not os.path.exists(path):
            return None
        return path_digest(path, self.cache)

    @property
    def hashed(self):
        return self.cache.hashed

    def save(self):
        """Keep the digests used this run and those of the file still valid (another module of the
        same run may have written some): entries whose file changed or went away are dropped."""
        merged = dict(read_json(self.cache_path, {}), **self.cache.used)
        kept = dict((key, digest) for key, digest in merged.items() if current(key))
        if kept != self.cache.data:
            ensure_dir(os.path.dirname(self.cache_path))
            atomic_write(self.cache_path, json.dumps(kept, indent=1, sort_keys=True) + '\n', mode=0o600)


def current(key):
    """Whether a digest cache key (path|size|mtime_ns|inode) still describes its file."""
    path = key.rsplit('|', 3)[0]
    try:
        info = os.stat(path)
    except OSError:
        return False
    return key == '%s|%d|%d|%d' % (path, info.st_size, info.st_mtime_ns, info.st_ino)


def image_ids(client, definitions):
    """{image: ID on this Docker host, or None when it is not here}."""
    ids = {}
    for definition in definitions:
        image = definition['image']
        try:
            ids[image] = client.images.get(image).id
        except ImageNotFound:
            ids[image] = None
    return ids


def observe(client, definitions):
    """{role: exists, running, release (its label), image_id} of the containers on this host."""
    seen = {}
    for role, definition in definitions.items():
        if definition is None:
            continue
        try:
            container = client.containers.get(definition['name'])
        except NotFound:
            seen[role] = {'exists': False, 'running': False, 'release': None, 'image_id': None}
            continue
        labels = container.attrs.get('Config', {}).get('Labels') or {}
        seen[role] = {'exists': True, 'running': container.status == 'running',
                      'release': labels.get(RELEASE_LABEL), 'image_id': container.attrs.get('Image')}
    return seen
