# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What `docker build` sends of an image directory: its files less what `.dockerignore` leaves out.

An image's tag is the fingerprint of its build context, so a file the build never sees (a README
listed in `.dockerignore`) changes no tag, no image ID and so no release. Patterns follow Docker's
rules: matched against the path from the directory's root, `*` and `?` within one path segment,
`**` any number of segments, a matched directory leaves out everything below it. A file with an
exception (`!pattern`) is not interpreted: the whole directory counts, as before (a tag may then
change for nothing, never stay for a change). The Dockerfiles and `.dockerignore` always count.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fnmatch
import os
import re

DOCKERIGNORE = '.dockerignore'
_ALWAYS = re.compile(r'^(Dockerfile(\..*)?|\.dockerignore)$')


def dockerignore_patterns(root):
    """The patterns of ``root/.dockerignore`` as lists of segments; ``[]`` without the file or
    when it has an exception (``!``)."""
    path = os.path.join(root, DOCKERIGNORE)
    if not os.path.isfile(path):
        return []
    patterns = []
    with open(path, 'rb') as handle:
        for raw in handle.read().decode('utf-8').splitlines():
            line = raw.strip()
            if not line or line.startswith('#'):
                continue
            if line.startswith('!'):
                return []
            segments = [part for part in line.strip('/').split('/') if part not in ('', '.')]
            if segments:
                patterns.append(segments)
    return patterns


def _match(pattern, parts):
    if not pattern:
        return not parts
    if pattern[0] == '**':
        return any(_match(pattern[1:], parts[at:]) for at in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match(pattern[1:], parts[1:])


def ignored(rel, patterns):
    """True when ``rel`` (a ``/`` path from the root) or a directory above it matches a pattern."""
    if _ALWAYS.match(rel):
        return False
    parts = rel.split('/')
    return any(_match(pattern, parts[:depth]) for depth in range(1, len(parts) + 1) for pattern in patterns)


def context_digests(digests, root):
    """``[(rel, sha)]`` of a directory's files less those its ``.dockerignore`` leaves out."""
    patterns = dockerignore_patterns(root)
    return [(rel, sha) for rel, sha in digests if not ignored(rel, patterns)]
