# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which knowledge base versions to keep: the newest ``keep``, and every one in use.

A version leaves in two steps: renamed to ``.removing-<version>-…`` (readers open versions by
name, so from then on none can find it), then deleted. A prune killed between the two leaves
only such a directory, which the next prune deletes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import os
import tempfile
import time

from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_store import (
    TMP_PREFIX, read_json, remove_tree)

REMOVING_PREFIX = '.removing-'


def plan(versions, keep, protect):
    """``(kept, removed)`` version names, newest first.

    ``versions``: ``{name: created}`` (any sortable time); ``keep``: how many of the newest stay;
    ``protect``: names that stay whatever their age (the versions the colors mount).
    """
    if keep < 1:
        raise ValueError('keep must be at least 1 (the version just built), not %d' % keep)
    newest_first = sorted(versions, key=lambda name: (versions[name], name), reverse=True)
    kept = [name for index, name in enumerate(newest_first) if index < keep or name in protect]
    return kept, [name for name in newest_first if name not in kept]


def protected_names(name_dir, protect):
    """Version names from ``protect`` entries: a version name, or a path of a version in ``name_dir``."""
    names = set()
    real_dir = os.path.realpath(name_dir)
    for entry in protect:
        entry = str(entry).rstrip('/')
        if '/' not in entry:
            names.add(entry)
        elif os.path.dirname(os.path.realpath(entry)) == real_dir:
            names.add(os.path.basename(entry))
    return names


def list_versions(name_dir):
    """``({version: created}, leftovers)``: finished versions (a directory with manifest.json; its
    ``created_at``, else the directory's mtime) and the ``.removing-`` directories of a killed prune."""
    versions, leftovers = {}, []
    for entry in sorted(os.listdir(name_dir)):
        path = os.path.join(name_dir, entry)
        if os.path.islink(path) or not os.path.isdir(path):
            continue
        if entry.startswith(REMOVING_PREFIX):
            leftovers.append(entry)
            continue
        if entry.startswith('.') or entry.startswith(TMP_PREFIX):
            continue  # the embedding cache, builds in progress
        manifest = os.path.join(path, 'manifest.json')
        if not os.path.isfile(manifest):
            continue  # not a version this collection built: never touched
        versions[entry] = created_at(manifest) or os.stat(path).st_mtime
    return versions, leftovers


def created_at(manifest):
    """The manifest's ``created_at`` (ISO 8601 UTC, as kb_build writes it) in epoch seconds, or None."""
    try:
        value = str(read_json(manifest).get('created_at') or '')
        return float(calendar.timegm(time.strptime(value[:19], '%Y-%m-%dT%H:%M:%S')))
    except (OSError, ValueError, AttributeError):
        return None


def remove_version(name_dir, version):
    """Rename the version out of reach, then delete it."""
    hidden = tempfile.mkdtemp(prefix='%s%s-' % (REMOVING_PREFIX, version), dir=name_dir)
    os.rename(os.path.join(name_dir, version), os.path.join(hidden, version))
    remove_tree(hidden)
