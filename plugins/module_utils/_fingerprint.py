# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Directory fingerprint shared by kb_checksum, kb_build and qa-api (docs/contracts.md).

For a directory D: every regular file below D, except a file named manifest.json
directly in D, sorted by relative POSIX path ``rel``;
``checksum = sha256(concat(rel + "\\0" + sha256hex(file) + "\\n"))``.
Symlinks and other non-regular files are an error: a knowledge base must be a
self-contained, immutable tree.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fnmatch
import hashlib
import os
import stat

MANIFEST_NAME = 'manifest.json'
_BLOCK = 1024 * 1024


class FingerprintError(Exception):
    """A directory cannot be fingerprinted (symlink, special file, unreadable)."""


def file_sha256(path):
    """Hex sha256 of a file's content, read in blocks."""
    digest = hashlib.sha256()
    try:
        with open(path, 'rb') as handle:
            while True:
                block = handle.read(_BLOCK)
                if not block:
                    break
                digest.update(block)
    except (IOError, OSError) as exc:
        raise FingerprintError('cannot read %s: %s' % (path, exc))
    return digest.hexdigest()


def excluded(rel, name, patterns):
    """True when a name or a relative path matches one of the fnmatch ``patterns``."""
    return any(fnmatch.fnmatchcase(name, pat) or fnmatch.fnmatchcase(rel, pat) for pat in patterns)


def list_files(root, exclude_manifest=True, exclude=()):
    """Return sorted ``[(rel, abspath)]`` of the regular files below ``root``.

    ``rel`` uses ``/`` as separator. ``manifest.json`` directly in ``root`` is
    left out when ``exclude_manifest`` is true; files and directories whose name
    or relative path match a pattern of ``exclude`` are left out (directories
    are not entered).
    """
    if not os.path.isdir(root):
        raise FingerprintError('%s is not a directory' % root)
    found = []
    pending = ['']
    while pending:
        rel_dir = pending.pop()
        abs_dir = os.path.join(root, rel_dir) if rel_dir else root
        try:
            entries = list(os.scandir(abs_dir))
        except (IOError, OSError) as exc:
            raise FingerprintError('cannot list %s: %s' % (abs_dir, exc))
        for entry in entries:
            rel = rel_dir + '/' + entry.name if rel_dir else entry.name
            if exclude and excluded(rel, entry.name, exclude):
                continue
            try:
                mode = os.lstat(entry.path).st_mode
            except (IOError, OSError) as exc:
                raise FingerprintError('cannot stat %s: %s' % (entry.path, exc))
            if stat.S_ISLNK(mode):
                raise FingerprintError(
                    'symlink %s is not allowed in a fingerprinted directory: '
                    'replace it with a regular file or remove it' % entry.path)
            if stat.S_ISDIR(mode):
                pending.append(rel)
            elif stat.S_ISREG(mode):
                if exclude_manifest and rel == MANIFEST_NAME:
                    continue
                found.append((rel, entry.path))
            else:
                raise FingerprintError(
                    '%s is not a regular file (device, fifo or socket): remove it' % entry.path)
    # Code point order of str == byte order of UTF-8, so every implementation agrees.
    found.sort(key=lambda item: item[0])
    return found


def file_digests(root, exclude_manifest=True, exclude=()):
    """Return sorted ``[(rel, sha256hex)]`` of the regular files below ``root``."""
    return [(rel, file_sha256(path)) for rel, path in list_files(root, exclude_manifest, exclude)]


def checksum_of(digests):
    """Fingerprint of ``[(rel, sha256hex)]`` pairs (sorted here, order of input does not matter)."""
    total = hashlib.sha256()
    for rel, sha in sorted(digests, key=lambda item: item[0]):
        total.update(rel.encode('utf-8') + b'\0' + sha.encode('ascii') + b'\n')
    return total.hexdigest()


def fingerprint(root, exclude_manifest=True, exclude=()):
    """Return ``(checksum, [(rel, sha256hex)])`` of the directory ``root``."""
    digests = file_digests(root, exclude_manifest, exclude)
    return checksum_of(digests), digests


def compare_digests(expected, actual):
    """Compare ``{rel: sha}`` maps: return ``{changed, added, removed}`` sorted lists."""
    return {
        'changed': sorted(rel for rel in expected if rel in actual and actual[rel] != expected[rel]),
        'added': sorted(rel for rel in actual if rel not in expected),
        'removed': sorted(rel for rel in expected if rel not in actual),
    }
