# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run the knowledge base builder CLI (``python -m qa_api.kb.build``) in the qa-api image.

The embedding runs in the same image that embeds queries at serving time, so
documents and queries are embedded by the same code and model.
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

IN_DIR = '/in'
OUT_DIR = '/out'
CACHE_MOUNT = '/cache'
_LOG_TAIL = 20


class BuilderError(Exception):
    """The builder could not run or reported a failure."""

    def __init__(self, message, file=None):
        super(BuilderError, self).__init__(message)
        self.file = file


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


def parse_result(stdout):
    """Return the builder's JSON result: the last stdout line that is a JSON object with ``ok``."""
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


def run_builder(image, docs, tmp_dir, cache_dir, name, version, chunk_size, chunk_overlap,
                embed_model, embed_name, timeout, cache_file):
    """Run one build; return the builder's success JSON or raise BuilderError."""
    tmp_name = os.path.basename(tmp_dir)
    command = builder_command(name, version, tmp_name, chunk_size, chunk_overlap, embed_model, embed_name,
                              cache_file)
    try:
        client = docker.from_env(timeout=max(60, timeout))
        client.images.get(image)
    except ImageNotFound:
        raise BuilderError('builder image %s is not on this docker host: build it first (role '
                           'llmops.bluegreen.images) or set builder_image to an existing qa-api image' % image)
    except DockerException as exc:
        raise BuilderError('cannot reach the docker engine: %s' % exc)

    container = None
    try:
        container = client.containers.create(
            image,
            command=command,
            name=container_name(name, version),
            # Same owner as the module so the output can be sealed and renamed without root.
            user='%d:%d' % (os.getuid(), os.getgid()),
            environment={
                'HOME': '/tmp',
                'HF_HUB_OFFLINE': '1',
                'TRANSFORMERS_OFFLINE': '1',
            },
            volumes={
                docs: {'bind': IN_DIR, 'mode': 'ro'},
                tmp_dir: {'bind': '%s/%s' % (OUT_DIR, tmp_name), 'mode': 'rw'},
                cache_dir: {'bind': CACHE_MOUNT, 'mode': 'rw'},
            },
            network_disabled=True,
            labels={'llmops.kb.name': name, 'llmops.kb.version': version},
        )
        container.start()
        try:
            status = container.wait(timeout=timeout)
        except Exception as exc:  # requests' ReadTimeout / ConnectionError, version dependent
            raise BuilderError('the builder did not finish within %d seconds (%s): raise timeout= for '
                               'large document sets' % (timeout, exc))
        exit_code = status.get('StatusCode', -1) if isinstance(status, dict) else -1
        stdout = container.logs(stdout=True, stderr=False).decode('utf-8', 'replace')
        stderr = container.logs(stdout=False, stderr=True).decode('utf-8', 'replace')
    except DockerException as exc:
        raise BuilderError('running the builder in %s failed: %s' % (image, exc))
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except DockerException:
                pass

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
