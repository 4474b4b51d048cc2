# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Knowledge base version: which documents count and how the version id is derived.

See docs/contracts.md, "KB version directory". The version only depends on the
supported documents, the splitter, the embedding model (name and content digest),
the builder's digest and the schema, so the same inputs always give the same
version directory and a new model or builder under the same names a new one.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os

from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import (
    FingerprintError,
    checksum_of,
    file_sha256,
    fingerprint,
    list_files,
)

# 2: the embedding model's content digest and the builder's digest are part of the version.
SCHEMA = 2
SUPPORTED_EXTENSIONS = ('.txt', '.md', '.markdown', '.html', '.htm', '.pdf', '.docx', '.pptx', '.xlsx', '.csv',
                        '.jsonl', '.epub', '.odt')
SPLITTER_NAME = 'recursive_character'
# Paragraph, line, then sentence and clause ends (Chinese full-width first), words, characters.
SEPARATORS = ['\n\n', '\n', '\u3002', '\uff01', '\uff1f', '\uff1b', '. ', '! ', '? ', '; ',
              '\uff0c', ', ', ' ', '']
VERSION_LENGTH = 12


class DocumentsError(Exception):
    """The documents directory cannot be used to build a knowledge base."""


class ModelError(Exception):
    """The embedding model directory cannot be used (missing, not a model, symlinks)."""


def is_supported(rel):
    """True when the file's extension is one the builder reads (case-insensitive)."""
    return os.path.splitext(rel)[1].lower() in SUPPORTED_EXTENSIONS


def splitter_params(chunk_size, chunk_overlap):
    """The splitter description recorded in the version and the manifest."""
    return {
        'name': SPLITTER_NAME,
        'chunk_size': chunk_size,
        'chunk_overlap': chunk_overlap,
        'separators': list(SEPARATORS),
    }


def validate_splitter(chunk_size, chunk_overlap):
    """Return an error message for unusable chunk parameters, or None."""
    if chunk_size < 1:
        return 'chunk_size must be at least 1 (got %d)' % chunk_size
    if chunk_overlap < 0:
        return 'chunk_overlap must not be negative (got %d)' % chunk_overlap
    if chunk_overlap >= chunk_size:
        return ('chunk_overlap (%d) must be smaller than chunk_size (%d): lower chunk_overlap '
                'or raise chunk_size' % (chunk_overlap, chunk_size))
    return None


def scan_documents(docs):
    """Return ``(inputs, skipped)`` for the documents directory ``docs``.

    ``inputs`` is the sorted list of ``{"path", "sha256", "bytes", "type"}`` of the
    supported documents, ``skipped`` the sorted relative paths of the other files.
    """
    if not os.path.exists(docs):
        raise DocumentsError('documents directory %s does not exist: create it or point docs= at the '
                             'directory holding the documents' % docs)
    if not os.path.isdir(docs):
        raise DocumentsError('documents path %s is not a directory' % docs)
    inputs = []
    skipped = []
    # manifest.json is an ordinary (unsupported) document here, not excluded.
    for rel, path in list_files(docs, exclude_manifest=False):
        if not is_supported(rel):
            skipped.append(rel)
            continue
        inputs.append({
            'path': rel,
            'sha256': file_sha256(path),
            'bytes': os.path.getsize(path),
            'type': os.path.splitext(rel)[1].lower().lstrip('.'),
        })
    if not inputs:
        raise DocumentsError('no supported documents in %s (supported extensions: %s; %d other file(s) '
                             'ignored)' % (docs, ' '.join(SUPPORTED_EXTENSIONS), len(skipped)))
    return inputs, skipped


def inputs_checksum(inputs):
    """Fingerprint of the supported documents (same formula as a directory fingerprint)."""
    return checksum_of([(item['path'], item['sha256']) for item in inputs])


def compute_version(inputs_fingerprint, splitter, embedding_name, embedding_digest, builder_digest):
    """First 12 hex of sha256 over the canonical JSON of the version inputs."""
    canonical = json.dumps(
        {'inputs': inputs_fingerprint, 'splitter': splitter,
         'embedding': {'name': embedding_name, 'digest': embedding_digest},
         'builder': builder_digest, 'schema': SCHEMA},
        sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:VERSION_LENGTH]


def model_dir_digest(path):
    """Content digest of an embedding model directory: its directory fingerprint (docs/contracts.md)."""
    if not os.path.exists(path):
        raise ModelError('embedding model directory %s does not exist: point embedding_model_dir at '
                         'a local sentence-transformers model directory on the docker host' % path)
    if not os.path.isdir(path):
        raise ModelError('embedding_model_dir %s is not a directory' % path)
    if not any(os.path.isfile(os.path.join(path, name)) for name in ('modules.json', 'config.json')):
        raise ModelError('%s is not a sentence-transformers model directory (no modules.json or '
                         'config.json): point embedding_model_dir at the model folder itself' % path)
    try:
        return fingerprint(path)[0]
    except FingerprintError as exc:
        raise ModelError('cannot fingerprint the embedding model directory: %s (a model copied out of '
                         'a Hugging Face cache is made of symlinks: copy it with cp -rL)' % exc)
