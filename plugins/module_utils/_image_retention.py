# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which of the collection's image builds to keep after a release (module image_prune).

Candidates are only tags the images role writes: ``<repository>/<name>:<version>-<12 hex>``
(optionally only some names). The base image (``llmops/base:bookworm``), test tags and
anything else never match, so they are never touched. A build stays when it is among the
``keep`` newest of its name, or a container (running or stopped) uses it, or a color's spec
in state.json names it, or the caller protects it (the images just built).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

# The images role's tag: <images_version>-<first 12 hex of the source fingerprint>.
BUILD_TAG_RE = re.compile(r'^[A-Za-z0-9_.-]*-[0-9a-f]{12}$')


class RetentionError(ValueError):
    """Bad input or unreadable state; the message names it and the fix."""


def split_ref(ref):
    """``(repository/name, tag)`` of a reference; a registry port (``host:5000/x``) is not a tag."""
    slash = ref.rfind('/')
    colon = ref.rfind(':')
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, 'latest'


def candidate_name(ref, repository, names=None):
    """The image name (``qa-api``) when ``ref`` is a build tag of the collection, else None."""
    repo, tag = split_ref(ref)
    prefix = repository.rstrip('/') + '/'
    if not repo.startswith(prefix) or not BUILD_TAG_RE.match(tag):
        return None
    name = repo[len(prefix):]
    if '/' in name or (names and name not in names):
        return None
    return name


def spec_images(state, read_spec):
    """Image references and IDs that the colors of ``state`` (state.json) run, from their specs.

    ``read_spec(release)`` returns the spec dict, or None when its file is missing: then the
    color's images cannot be told and nothing may be removed (RetentionError).
    """
    refs = set()
    for color, record in sorted(((state or {}).get('colors') or {}).items()):
        release = (record or {}).get('release')
        if not release:
            continue  # recorded before specs existed: its containers still protect its images
        spec = read_spec(release)
        if spec is None:
            raise RetentionError(
                'color %s runs release %s but its spec is missing; no image is removed, since what it needs '
                'cannot be told. The next release that computes its spec (color_spec) writes it again'
                % (color, release))
        for container in (spec.get('containers') or {}).values():
            for key in ('image', 'image_id'):
                if (container or {}).get(key):
                    refs.add(container[key])
    return refs


def read_spec_file(specs_dir):
    """A ``read_spec`` for spec_images over ``<state dir>/<service>/specs/<release>.json``."""
    def read(release):
        if not re.match(r'^[0-9a-f]{8,64}$', str(release)):
            raise RetentionError('state.json names release %r, which is not a fingerprint: repair state.json'
                                 % (release,))
        path = os.path.join(specs_dir, '%s.json' % release)
        try:
            with open(path, 'rb') as handle:
                return json.loads(handle.read().decode('utf-8'))
        except (IOError, OSError):
            if os.path.exists(path):
                raise
            return None
        except ValueError as exc:
            raise RetentionError('%s is not JSON (%s): remove it, the next release writes it again' % (path, exc))
    return read


def plan(images, keep, in_use, protect, repository, names=None):
    """``(kept, removed)``: lists of ``{'name', 'id', 'tags', 'created', 'why'}``, newest first per name.

    ``images``: ``[{'id', 'tags', 'created'}]`` as the engine lists them; ``keep``: builds of each
    name that stay whatever else; ``in_use``: image IDs that containers use; ``protect``:
    references or IDs that stay (colors' specs, the images just built). Only the build tags
    (candidate_name) of an image are ever removed; its other tags stay.
    """
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise RetentionError('keep must be at least 1 (the build a color just started), not %r' % (keep,))
    if not repository or not re.match(r'^[a-z0-9][a-z0-9._/-]*$', repository.rstrip('/')):
        raise RetentionError('repository %r is not an image repository prefix (e.g. llmops)' % (repository,))
    protect = set(protect or ())
    in_use = set(in_use or ())
    by_name = {}
    for image in images:
        tags_by_name = {}
        for ref in image.get('tags') or ():
            name = candidate_name(ref, repository, names)
            if name:
                tags_by_name.setdefault(name, []).append(ref)
        for name, tags in tags_by_name.items():
            by_name.setdefault(name, []).append(dict(name=name, id=image['id'], tags=sorted(tags),
                                                     created=image.get('created') or 0))
    kept, removed = [], []
    for name in sorted(by_name):
        builds = sorted(by_name[name], key=lambda b: (b['created'], b['tags']), reverse=True)
        for index, build in enumerate(builds):
            why = reason(build, index, keep, in_use, protect)
            (kept if why else removed).append(dict(build, why=why or 'older than the %d newest' % keep))
    return kept, removed


def reason(build, index, keep, in_use, protect):
    """Why a build stays, or '' when it may go."""
    if build['id'] in in_use:
        return 'a container uses it'
    if build['id'] in protect or protect.intersection(build['tags']):
        return 'protected (a color spec or the current build)'
    if index < keep:
        return 'one of the %d newest' % keep
    return ''


def listing(builds):
    """Diff text: one build tag a line, sorted."""
    return ''.join('%s\n' % tag for tag in sorted(tag for build in builds for tag in build['tags']))
