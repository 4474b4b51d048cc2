# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""On-disk layout of knowledge bases: ``<kb_root>/<name>/<version>/``.

A version directory appears only by renaming a finished temporary directory
into place, so readers never see a half-built version, and a finished version
is never modified.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import shutil
import stat
import tempfile
import time

from ansible_collections.llmops.bluegreen.plugins.module_utils._atomic import atomic_write, fsync_dir
from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import (
    FingerprintError,
    MANIFEST_NAME,
    compare_digests,
    fingerprint,
)

CACHE_DIR = '.cache'
CACHE_FILE = 'embeddings.sqlite'
TMP_PREFIX = '.tmp-'
DIR_MODE = 0o755
FILE_MODE = 0o644


class StoreError(Exception):
    """A knowledge base directory is not in the state it must be in."""


def read_json(path):
    with open(path, 'rb') as handle:
        return json.loads(handle.read().decode('utf-8'))


def write_json_atomic(path, data):
    """Write JSON to ``path`` atomically (temp file + fsync + rename)."""
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + '\n', FILE_MODE)


def verify_version_dir(path):
    """Return ``(manifest, checksum)`` of a version directory, or raise StoreError naming the difference."""
    manifest_path = os.path.join(path, MANIFEST_NAME)
    if not os.path.isfile(manifest_path):
        raise StoreError('%s exists but has no %s: it was not made by kb_build. Versions are never '
                         'modified automatically; remove the directory to rebuild it' % (path, MANIFEST_NAME))
    try:
        manifest = read_json(manifest_path)
        checksum, digests = fingerprint(path)
    except (IOError, OSError, ValueError, FingerprintError) as exc:
        raise StoreError('cannot verify %s: %s' % (path, exc))
    files = manifest.get('files') if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise StoreError('%s has no "files" map: it was not finalized by kb_build. Remove the directory '
                         'to rebuild it' % manifest_path)
    diff = compare_digests(files, dict(digests))
    problems = ['%s: %s' % (kind, ', '.join(diff[kind])) for kind in ('changed', 'added', 'removed') if diff[kind]]
    if manifest.get('checksum') != checksum:
        problems.append('checksum %s != manifest checksum %s' % (checksum, manifest.get('checksum')))
    if problems:
        raise StoreError('existing version %s does not match its manifest (%s). Versions are never modified '
                         'automatically: inspect it, then remove the directory to rebuild it'
                         % (path, '; '.join(problems)))
    return manifest, checksum


def ensure_dir(path):
    """Create ``path`` (and parents) with DIR_MODE if missing; return True when created."""
    if os.path.isdir(path):
        return False
    os.makedirs(path, DIR_MODE)
    return True


def make_temp_dir(name_dir, version):
    """Create ``<name_dir>/.tmp-<version>-<random>`` for one build."""
    path = tempfile.mkdtemp(prefix='%s%s-' % (TMP_PREFIX, version), dir=name_dir)
    os.chmod(path, DIR_MODE)
    return path


def remove_stale_temp_dirs(name_dir, max_age):
    """Remove build temp dirs left by killed runs (older than ``max_age`` seconds); return their names.

    Runs still in progress are younger than their timeout, so ``max_age`` must exceed it.
    """
    removed = []
    now = time.time()
    for entry in os.listdir(name_dir):
        path = os.path.join(name_dir, entry)
        if not entry.startswith(TMP_PREFIX) or os.path.islink(path) or not os.path.isdir(path):
            continue
        if now - os.stat(path).st_mtime > max_age:
            remove_tree(path)
            removed.append(entry)
    return sorted(removed)


def remove_tree(path):
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)


def _normalize_and_sync(root):
    """Make the tree readable by the service user and flush it to disk before the rename."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, DIR_MODE)
        for filename in filenames:
            path = os.path.join(dirpath, filename)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            os.chmod(path, FILE_MODE)
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(dirpath)


def finalize(tmp_dir, version_dir):
    """Seal a built temp dir: add ``files`` + ``checksum`` to its manifest, fsync, rename into place.

    Returns ``(manifest, checksum, won)``; ``won`` is False when another run
    renamed the same version first: theirs is kept (it has identical inputs) and ours removed.
    """
    manifest_path = os.path.join(tmp_dir, MANIFEST_NAME)
    try:
        manifest = read_json(manifest_path)
    except (IOError, OSError, ValueError) as exc:
        raise StoreError('the builder left no readable %s in %s: %s' % (MANIFEST_NAME, tmp_dir, exc))
    try:
        checksum, digests = fingerprint(tmp_dir)
    except FingerprintError as exc:
        raise StoreError('cannot fingerprint the build output: %s' % exc)
    manifest['files'] = dict(digests)
    manifest['checksum'] = checksum
    write_json_atomic(manifest_path, manifest)
    _normalize_and_sync(tmp_dir)
    try:
        os.rename(tmp_dir, version_dir)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not os.path.isdir(version_dir):
            raise
        remove_tree(tmp_dir)
        manifest, checksum = verify_version_dir(version_dir)
        return manifest, checksum, False
    fsync_dir(os.path.dirname(version_dir))
    return manifest, checksum, True


def check_builder_inputs(manifest, inputs):
    """The builder must have read exactly the documents the version was computed from."""
    built = dict((item.get('path'), item.get('sha256')) for item in manifest.get('inputs') or [])
    expected = dict((item['path'], item['sha256']) for item in inputs)
    if built != expected:
        only_built = sorted(set(built) - set(expected))
        only_expected = sorted(set(expected) - set(built))
        differ = sorted(p for p in expected if p in built and built[p] != expected[p])
        return ('the builder read other documents than kb_build fingerprinted (read but not expected: %s; '
                'expected but not read: %s; different content: %s): the builder image and the collection '
                'disagree on supported documents' % (only_built or '-', only_expected or '-', differ or '-'))
    return None


def check_built_identity(manifest, identity):
    """Return a message when the builder used another model or code than the version was computed from."""
    embedding = manifest.get('embedding') or {}
    # an auto build: the version follows the choice (the rule and every candidate), not the model picked
    used = dict(embedding_digest=(embedding.get('selection') or embedding).get('digest'),
                builder_digest=(manifest.get('builder') or {}).get('digest'))
    labels = dict(embedding_digest='embedding model digest', builder_digest='builder digest')
    problems = ['%s %s, the version was computed with %s' % (labels[key], used[key], identity[key])
                for key in ('embedding_digest', 'builder_digest') if used[key] != identity[key]]
    if not problems:
        return None
    return ('the builder reported %s: the embedding model directory or the builder image changed during the '
            'run, or the given identity is stale. The build was discarded; run again (without identity=, or '
            'with the identity of this image and model)' % '; '.join(problems))


def seal_build(tmp_dir, version_dir, inputs, version, identity):
    """Check the builder's manifest against what the version was computed from, then seal and rename."""
    try:
        built = read_json(os.path.join(tmp_dir, MANIFEST_NAME))
    except (IOError, OSError, ValueError) as exc:
        raise StoreError('the builder wrote no readable manifest.json: %s' % exc)
    if built.get('version') != version:
        raise StoreError('the builder wrote version %r, expected %r' % (built.get('version'), version))
    problem = check_builder_inputs(built, inputs) or check_built_identity(built, identity)
    if problem:
        raise StoreError(problem)
    return finalize(tmp_dir, version_dir)
