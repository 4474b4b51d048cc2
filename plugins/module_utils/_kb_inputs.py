# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What kb_build accepts as input: parameters, documents inside the docs dir, size caps, zip bombs.

Checked on the host (and on the controller in check mode) before any container runs; the builder
(qa_api.kb.limits) checks the same again inside the container. A zip container is judged from its
central directory only: nothing is decompressed here.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import zipfile

from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_version import validate_splitter

# Extensions of the supported documents that are zip containers.
ZIP_EXTENSIONS = ('.docx', '.pptx', '.xlsx', '.epub', '.odt')
# What opens each of them, for the fix of a broken one (the builder says the same: qa_api/kb/office.py).
ZIP_APPS = {
    '.docx': 'Word or LibreOffice Writer',
    '.pptx': 'PowerPoint or LibreOffice Impress',
    '.xlsx': 'Excel or LibreOffice Calc',
    '.odt': 'LibreOffice Writer',
    '.epub': 'the e-book editor that made it (e.g. Calibre)',
}
# Office encrypts a password-protected document into an OLE compound file (as .doc/.xls/.ppt are).
OLE_MAGIC = b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1'
# Members smaller than this are not judged by their ratio (a page of spaces compresses 500:1).
RATIO_GRACE_BYTES = 1024 * 1024
MAX_ZIP_ENTRIES = 10000
# option -> role variable, named in every message so the operator knows what to raise.
CAP_VARIABLES = {
    'max_file_bytes': 'knowledge_base_max_file_bytes',
    'max_total_bytes': 'knowledge_base_max_total_bytes',
    'max_unzipped_bytes': 'knowledge_base_max_unzipped_bytes',
    'max_zip_ratio': 'knowledge_base_max_zip_ratio',
    'builder_memory': 'knowledge_base_builder_memory',
}
_DIGEST_CHARS = frozenset('0123456789abcdef')


class InputError(Exception):
    """A document is refused (outside the docs dir, over a cap, a zip bomb); names the file."""

    def __init__(self, message, file=None):
        super(InputError, self).__init__(message)
        self.file = file


def is_digest(value):
    return isinstance(value, str) and len(value) == 64 and set(value) <= _DIGEST_CHARS


def raise_hint(option):
    return 'raise %s (role variable %s) if the document is genuine' % (option, CAP_VARIABLES[option])


def validate_params(params):
    """Return an error message for kb_build parameters that cannot work, or None."""
    name = params['name']
    if name is not None and (not name or name in ('.', '..') or '/' in name or name.startswith('.')):
        return 'name %r must be a plain directory name (no "/", not starting with ".")' % name
    problem = validate_splitter(params['chunk_size'], params['chunk_overlap'])
    if problem:
        return problem
    if params['timeout'] < 1:
        return 'timeout must be at least 1 second (got %d)' % params['timeout']
    for option in ('max_file_bytes', 'max_total_bytes', 'max_unzipped_bytes', 'max_zip_ratio',
                   'builder_pids_limit'):
        if params[option] < 1:
            return '%s must be at least 1 (got %d)' % (option, params[option])
    cpus = params.get('builder_cpus')
    if cpus is not None and not 0.01 <= cpus <= 1024:
        return 'builder_cpus must be a CPU count such as 1 or 1.5 (got %s); leave it unset for no quota' % cpus
    batch = params.get('embedding_batch_size')
    if batch is not None and not 1 <= batch <= 4096:
        return 'embedding_batch_size must be between 1 and 4096 (got %d); leave it unset for the backend default' % batch
    threads = params.get('embedding_threads')
    if threads is not None and not 1 <= threads <= 1024:
        return 'embedding_threads must be between 1 and 1024 (got %d); leave it unset for the CPU quota' % threads
    if params.get('embedding_gpus') and params.get('embedding_device', 'cpu') == 'cpu':
        return ('embedding_gpus %s is given but embedding_device is cpu: set embedding_device to gpu or auto, '
                'or leave embedding_gpus empty' % ','.join(params['embedding_gpus']))
    for key, value in sorted((params['identity'] or {}).items()):
        if not is_digest(value):
            return ('identity.%s must be 64 lowercase hex characters (a sha256), got %r: pass the identity '
                    'returned by kb_build' % (key, value))
    return None


def check_inside(docs, rel):
    """Refuse a document that is a symlink or resolves outside ``docs`` (defence in depth: the scan
    already refuses symlinks; this also catches a docs dir whose subdirectory was swapped)."""
    root = os.path.realpath(docs)
    path = os.path.join(docs, rel)
    if os.path.islink(path):
        raise InputError('%s is a symlink (to %s): symlinks are refused, replace it with a regular file'
                         % (rel, os.readlink(path)), file=rel)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        raise InputError('%s resolves to %s, outside the documents directory %s: refused' % (rel, real, root),
                         file=rel)


def not_a_zip(path, rel, problem):
    """Why a document of a zip type is not a zip, and the fix."""
    ext = os.path.splitext(rel)[1].lower()
    resave = 'open it in %s and save it again as %s' % (ZIP_APPS.get(ext, 'the application that made it'), ext)
    try:
        with open(path, 'rb') as handle:
            head = handle.read(8)
    except (IOError, OSError):
        head = b''
    if head == OLE_MAGIC:
        return ('%s is password-protected or an old binary .doc/.xls/.ppt under a new name (an OLE file, '
                'not a zip container): remove the password, or %s' % (ext.lstrip('.').upper(), resave))
    return 'corrupt or unreadable %s (not a zip container: %s): %s' % (ext.lstrip('.').upper(), problem, resave)


def check_zip(path, rel, max_unzipped_bytes, max_zip_ratio):
    """Judge a zip container from its central directory, before anything is extracted."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipfile, zipfile.LargeZipFile, IOError, OSError, ValueError) as exc:
        raise InputError('%s: %s' % (rel, not_a_zip(path, rel, exc)), file=rel)
    if len(members) > MAX_ZIP_ENTRIES:
        raise InputError('%s: zip container with %d members, over %d: refused as a zip bomb'
                         % (rel, len(members), MAX_ZIP_ENTRIES), file=rel)
    total = sum(member.file_size for member in members)
    if total > max_unzipped_bytes:
        raise InputError('%s: zip container expands to %d bytes, over the cap max_unzipped_bytes=%d '
                         '(refused unopened as a possible zip bomb; %s)'
                         % (rel, total, max_unzipped_bytes, raise_hint('max_unzipped_bytes')), file=rel)
    for member in members:
        if member.file_size <= RATIO_GRACE_BYTES:
            continue
        ratio = float(member.file_size) / max(member.compress_size, 1)
        if ratio > max_zip_ratio:
            raise InputError('%s: member %s expands %d bytes to %d (ratio %.0f:1), over the cap '
                             'max_zip_ratio=%d (refused unopened as a possible zip bomb; %s)'
                             % (rel, member.filename, member.compress_size, member.file_size, ratio,
                                max_zip_ratio, raise_hint('max_zip_ratio')), file=rel)


def check_documents(docs, inputs, max_file_bytes, max_total_bytes, max_unzipped_bytes, max_zip_ratio):
    """Apply the caps to the scanned ``inputs`` ({path, bytes}) of ``docs``; raise InputError."""
    total = 0
    for item in inputs:
        rel = item['path']
        check_inside(docs, rel)
        if item['bytes'] > max_file_bytes:
            raise InputError('%s is %d bytes, over the cap max_file_bytes=%d (%s)'
                             % (rel, item['bytes'], max_file_bytes, raise_hint('max_file_bytes')), file=rel)
        total += item['bytes']
        if os.path.splitext(rel)[1].lower() in ZIP_EXTENSIONS:
            check_zip(os.path.join(docs, rel), rel, max_unzipped_bytes, max_zip_ratio)
    if total > max_total_bytes:
        raise InputError('the documents in %s total %d bytes, over the cap max_total_bytes=%d (%s)'
                         % (docs, total, max_total_bytes, 'raise max_total_bytes (role variable %s) if the '
                            'documents are genuine' % CAP_VARIABLES['max_total_bytes']))
