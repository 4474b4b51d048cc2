# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The air-gap bundle's checksums and manifest (docs/air-gap.md), shared by the module
bundle_check and scripts/bundle.py.

An unpacked bundle is one directory: ``bundle.json`` (the manifest), the files it names, and
``SHA256SUMS`` (``sha256sum`` format, one line per file, every file but itself). Standard
library only: scripts/bundle.py loads this file by path on a machine that has no Ansible yet.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os
import re
import stat

MANIFEST_NAME = 'bundle.json'
SUMS_NAME = 'SHA256SUMS'
FORMAT = 1
_BLOCK = 1024 * 1024
_SUM_LINE = re.compile(r'^([0-9a-f]{64}) [ *](.+)$')
_IMAGE_ID = re.compile(r'^sha256:[0-9a-f]{64}$')
REFETCH = ('The bundle was altered or damaged: copy it again from the machine that made it '
           '(make bundle) and unpack it with scripts/bundle.py unpack.')


class BundleError(Exception):
    """A bundle cannot be used; the message names the problem and the fix."""


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while True:
            block = handle.read(_BLOCK)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def safe_relpath(rel):
    """``rel`` when it is a plain relative POSIX path inside the bundle; BundleError otherwise."""
    parts = rel.split('/')
    if not rel or rel.startswith('/') or '\\' in rel or any(p in ('', '.', '..') for p in parts) \
            or any(ord(c) < 32 for c in rel):
        raise BundleError('%r is not a plain relative path inside the bundle' % rel)
    return rel


def parse_sums(text):
    """{relative path: sha256 hex} of a SHA256SUMS text; BundleError naming a bad line."""
    sums = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _SUM_LINE.match(line)
        if not match:
            raise BundleError('%s line %d is not "<sha256>  <path>": %r' % (SUMS_NAME, number, line[:120]))
        rel = safe_relpath(match.group(2))
        if rel in sums:
            raise BundleError('%s line %d lists %s a second time' % (SUMS_NAME, number, rel))
        sums[rel] = match.group(1)
    return sums


def format_sums(sums):
    return ''.join('%s  %s\n' % (sums[rel], rel) for rel in sorted(sums))


def selected(rel, only):
    """Whether ``rel`` is one of ``only`` (paths or directory prefixes); None selects all."""
    if only is None:
        return True
    return any(rel == p.rstrip('/') or rel.startswith(p.rstrip('/') + '/') for p in only)


def scan(root):
    """Relative paths of the regular files below ``root`` (SHA256SUMS at the top left out).

    A symlink or special file is an error: a bundle is a self-contained tree of plain files.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, '/')
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise BundleError('%s is not a regular file or directory (a symlink?): a bundle holds '
                                  'plain files only. %s' % (rel, REFETCH))
            if stat.S_ISREG(mode) and rel != SUMS_NAME:
                found.append(rel)
    return sorted(found)


def compute_sums(root):
    """{rel: sha256} of every file below ``root``: what SHA256SUMS must say."""
    return dict((rel, file_sha256(os.path.join(root, rel))) for rel in scan(root))


def read_sums(root):
    path = os.path.join(root, SUMS_NAME)
    if not os.path.isfile(path):
        raise BundleError('%s has no %s: it is not an unpacked bundle (make bundle writes one; unpack it with '
                          'scripts/bundle.py unpack <archive> <directory>)' % (root, SUMS_NAME))
    with open(path, 'rb') as handle:
        data = handle.read()
    try:
        return parse_sums(data.decode('utf-8')), hashlib.sha256(data).hexdigest()
    except UnicodeDecodeError:
        raise BundleError('%s/%s is not UTF-8 text. %s' % (root, SUMS_NAME, REFETCH))


def verify(root, sums, only=None, hasher=file_sha256):
    """Compare the files below ``root`` selected by ``only`` with ``sums``.

    Returns {'changed': [(rel, actual, listed)], 'missing': [rel], 'unlisted': [rel], 'bytes': n};
    nothing changed, missing or unlisted means the selection is intact.
    """
    present = set(rel for rel in scan(root) if selected(rel, only))
    listed = set(rel for rel in sums if selected(rel, only))
    out = {'changed': [], 'missing': sorted(listed - present), 'unlisted': sorted(present - listed), 'bytes': 0}
    for rel in sorted(listed & present):
        path = os.path.join(root, rel)
        out['bytes'] += os.path.getsize(path)
        actual = hasher(path)
        if actual != sums[rel]:
            out['changed'].append((rel, actual, sums[rel]))
    return out


def describe(root, result):
    """One message naming every file that fails, or '' when none does."""
    problems = ['%s: content differs (sha256 %s, %s lists %s)' % (rel, actual[:12], SUMS_NAME, listed[:12])
                for rel, actual, listed in result['changed']]
    problems += ['%s: listed in %s but missing' % (rel, SUMS_NAME) for rel in result['missing']]
    problems += ['%s: not listed in %s' % (rel, SUMS_NAME) for rel in result['unlisted']]
    if not problems:
        return ''
    return 'bundle %s fails its checksums: %s. %s' % (root, '; '.join(problems), REFETCH)


def check_manifest(manifest, sums):
    """Problems of a manifest (structure, and every file it names listed in SHA256SUMS)."""
    if not isinstance(manifest, dict):
        return ['%s is not a JSON object' % MANIFEST_NAME]
    if manifest.get('format') != FORMAT:
        return ['%s has format %r; this collection reads format %d: make the bundle with the same collection '
                'version' % (MANIFEST_NAME, manifest.get('format'), FORMAT)]
    problems = []
    for key in ('name', 'version', 'images', 'debs', 'wheels', 'collection'):
        if key not in manifest:
            problems.append('%s has no %r' % (MANIFEST_NAME, key))
    images = manifest.get('images', {})
    for name, image in sorted(images.items() if isinstance(images, dict) else []):
        if not isinstance(image, dict) or not _IMAGE_ID.match(str(image.get('id', ''))):
            problems.append('image %s has no sha256 image ID' % name)
        elif image.get('archive') not in sums:
            problems.append('image %s: archive %s is not in %s' % (name, image.get('archive'), SUMS_NAME))
    debs = manifest.get('debs', {})
    if isinstance(debs, dict) and debs.get('dir') and '%s/Packages' % debs['dir'] not in sums:
        problems.append('debs: %s/Packages (the apt index) is not in %s' % (debs['dir'], SUMS_NAME))
    for name, wheels in sorted((manifest.get('wheels') or {}).items()):
        if not any(selected(rel, [wheels.get('dir', '?')]) for rel in sums):
            problems.append('wheels %s: no file of %s is in %s' % (name, wheels.get('dir'), SUMS_NAME))
    collection = manifest.get('collection') or {}
    if collection.get('file') and collection['file'] not in sums:
        problems.append('collection: %s is not in %s' % (collection['file'], SUMS_NAME))
    for model in manifest.get('models', []):
        if not any(selected(rel, [model.get('path', '?')]) for rel in sums):
            problems.append('model %s: %s is not in %s' % (model.get('name'), model.get('path'), SUMS_NAME))
    return problems


def find_images(manifest, refs):
    """({ref: image ID}, {ref: archive rel path}, [refs the bundle lacks]) for the image references ``refs``."""
    by_ref = dict((image['ref'], image) for image in manifest.get('images', {}).values())
    ids, archives = {}, {}
    for ref in refs:
        if ref in by_ref:
            ids[ref] = by_ref[ref]['id']
            archives[ref] = by_ref[ref]['archive']
    return ids, archives, [ref for ref in refs if ref not in by_ref]


def missing_images_message(root, manifest, missing):
    return ('bundle %s has no image %s (it holds %s; made from commit %s). The checkout that deploys must be the '
            'one the bundle was made from, since image tags follow the sources in images/: deploy that commit, or '
            'make a new bundle from this one' % (root, ', '.join(missing),
                                                 ', '.join(sorted(i['ref'] for i in manifest['images'].values()))
                                                 or 'no image', manifest.get('commit', 'unknown')))


def missing_packages(manifest, packages):
    """Debian packages of ``packages`` the bundle was not made for (its debs.packages)."""
    have = set((manifest.get('debs') or {}).get('packages', []))
    return [p for p in packages if p not in have]
