# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A directory of documents as one reproducible tar.gz: same files, same bytes.

Entries are sorted, owned by 0:0, files 0644 and directories 0755, all with one fixed time,
and the gzip header has no time: the archive depends on the names and bytes of the documents
only (not on when a checkout wrote them), so the same documents give the same archive, and
unarchive finds them unchanged on the host. Nothing downstream reads document times (the KB
version is content-addressed). Symlinks and special files are refused while packing (the walk
of _fingerprint), whatever a check before found.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gzip
import hashlib
import os
import stat
import tarfile
import tempfile

from ansible_collections.llmops.bluegreen.plugins.module_utils._atomic import fsync_dir
from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import FingerprintError, file_sha256, list_files


# 2000-01-01T00:00:00Z: GNU tar warns about an "implausibly old time stamp" at 0.
FIXED_MTIME = 946684800


class ArchiveError(Exception):
    """The documents cannot be packed; the message names the file and the fix."""


def parents(rel):
    """The directories above a relative POSIX path, outermost first: a/b/c.md -> [a, a/b]."""
    parts = rel.split('/')[:-1]
    return ['/'.join(parts[:i]) for i in range(1, len(parts) + 1)]


def _entry(name, kind, size=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ''
    info.size = size
    info.mtime = FIXED_MTIME
    return info


def _add_file(tar, rel, path):
    """Add one regular file; its size is read from the open file, and a file replaced by a link
    between the walk and here is not followed (O_NOFOLLOW)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    except OSError as exc:
        raise ArchiveError('cannot read %s: %s (a link or a file removed while packing: re-run)' % (path, exc))
    with os.fdopen(fd, 'rb') as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ArchiveError('%s is not a regular file: remove it' % path)
        try:
            tar.addfile(_entry(rel, tarfile.REGTYPE, st.st_size), handle)
        except OSError as exc:
            raise ArchiveError('%s changed while it was packed (%s): re-run when it is written' % (path, exc))
    return st.st_size


class _Hashing(object):
    """A write-only file that hashes what passes through to ``handle`` (None: hash only)."""

    def __init__(self, handle=None):
        self.handle, self.digest = handle, hashlib.sha256()

    def write(self, data):
        self.digest.update(data)
        return self.handle.write(data) if self.handle else len(data)

    def flush(self):
        if self.handle:
            self.handle.flush()


def write_archive(root, handle):
    """Write the tar.gz of ``root`` to the binary file object ``handle``; return (files, bytes)."""
    try:
        files = list_files(root, exclude_manifest=False)
    except FingerprintError as exc:
        raise ArchiveError(str(exc))
    names = sorted(set(d for rel, dummy in files for d in parents(rel)) | set(rel for rel, dummy in files))
    paths = dict(files)
    total = 0
    with gzip.GzipFile(filename='', mode='wb', fileobj=handle, mtime=0) as zipped:
        with tarfile.open(fileobj=zipped, mode='w', format=tarfile.PAX_FORMAT) as tar:
            for name in names:
                if name in paths:
                    total += _add_file(tar, name, paths[name])
                else:
                    tar.addfile(_entry(name, tarfile.DIRTYPE))
    return len(files), total


def same_bytes(dest, digest):
    """True when ``dest`` is a regular file (not a link) whose sha256 is ``digest``."""
    return os.path.isfile(dest) and not os.path.islink(dest) and file_sha256(dest) == digest


def pack(root, dest, check_mode=False):
    """Pack ``root`` into ``dest`` (replaced atomically, mode 0600, only when its bytes change).

    Returns a dict: changed, sha256, files, bytes. The directory of ``dest`` is created 0700. In
    check mode the archive is only hashed, never written, and ``dest`` is not touched.
    """
    if check_mode:
        sink = _Hashing()
        count, size = write_archive(root, sink)
        digest = sink.digest.hexdigest()
        return dict(changed=not same_bytes(dest, digest), sha256=digest, files=count, bytes=size)
    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(dest), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            sink = _Hashing(handle)
            count, size = write_archive(root, sink)
            handle.flush()
            os.fsync(handle.fileno())
        digest = sink.digest.hexdigest()
        changed = not same_bytes(dest, digest)
        if changed:
            os.replace(tmp, dest)
            fsync_dir(directory)
        else:
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dict(changed=changed, sha256=digest, files=count, bytes=size)
