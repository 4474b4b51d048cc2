# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The builder's containers: short-lived, hardened runs of the qa-api image.

Every run (the identity query and the build) is: the image's non-root user (uid 10001, ``qa`` in
images/qa-api/Dockerfile), no network at all (``network_mode: none``; the embedding model is local),
``cap_drop: ALL``, ``no-new-privileges``, a read-only root with a tmpfs at /tmp, and memory (without
extra swap) and pids limits. The documents and the model are mounted read-only; only the temporary
output directory and the embedding cache are writable.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

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

# The qa-api image's user (images/qa-api/Dockerfile: useradd --uid 10001, group --gid 10001).
BUILDER_UID = 10001
BUILDER_GID = 10001
DEFAULT_MEMORY = '2g'
DEFAULT_PIDS_LIMIT = 512
TMPFS = {'/tmp': 'rw,nosuid,nodev,size=256m'}
_LOG_TAIL = 20
# A GPU reaches a container through this engine runtime (kb_build embedding_device gpu or auto).
GPU_RUNTIME = 'nvidia'


class BuilderError(Exception):
    """The builder could not run or reported a failure."""

    def __init__(self, message, file=None):
        super(BuilderError, self).__init__(message)
        self.file = file


def builder_user():
    """``uid:gid`` the builder runs as: the image's user when the module is root (it hands the output
    directory to that user and takes it back), else the module's own non-root user."""
    if os.getuid() == 0:
        return '%d:%d' % (BUILDER_UID, BUILDER_GID)
    return '%d:%d' % (os.getuid(), os.getgid())


def hardening(memory=DEFAULT_MEMORY, pids_limit=DEFAULT_PIDS_LIMIT, cpus=None):
    """The docker SDK ``containers.create`` keyword arguments that confine a builder container.

    ``cpus`` (a CPU quota, e.g. 1.5) also sizes the embedding threads: the builder reads its quota."""
    options = dict(
        user=builder_user(),
        network_mode='none',
        cap_drop=['ALL'],
        security_opt=['no-new-privileges:true'],
        read_only=True,
        tmpfs=dict(TMPFS),
        mem_limit=memory,
        memswap_limit=memory,
        pids_limit=pids_limit,
    )
    if cpus:
        options['nano_cpus'] = int(round(cpus * 1e9))
    return options


def gpu_plan(wanted, runtimes, gpus=None):
    """``(the builder's --device, the container's GPU request or None)`` for embedding_device ``wanted`` on an
    engine whose ``docker info`` lists ``runtimes``. ``gpus``: device IDs or UUIDs, empty for every GPU.

    V(auto) asks for the GPUs only where the engine has the NVIDIA runtime, and the builder still embeds on the
    CPU when its image has no CUDA (it says so); V(gpu) fails here, or in the builder, instead."""
    if wanted == 'cpu':
        return 'cpu', None
    if GPU_RUNTIME not in runtimes:
        if wanted == 'gpu':
            raise BuilderError('embedding_device gpu: the Docker engine has no %s runtime (it has: %s), so the builder '
                               'cannot be given a GPU: install the NVIDIA container toolkit (role '
                               'llmops.bluegreen.docker_host, docker_host_nvidia: true), or set embedding_device to '
                               'auto or cpu' % (GPU_RUNTIME, ', '.join(sorted(runtimes)) or 'none'))
        return 'cpu', None
    request = dict(driver=GPU_RUNTIME, capabilities=[['gpu']])
    if gpus:
        request['device_ids'] = [str(gpu) for gpu in gpus]
    else:
        request['count'] = -1
    return ('cuda' if wanted == 'gpu' else 'auto'), request


def engine_runtimes(client):
    """The runtimes the Docker engine lists (``docker info``)."""
    try:
        return sorted((client.info() or {}).get('Runtimes') or {})
    except DockerException as exc:
        raise BuilderError('cannot ask the docker engine for its runtimes: %s' % exc)


def chown_tree(path, uid, gid):
    """Give ``path`` and everything below it (no symlinks followed) to ``uid:gid``."""
    os.lchown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def tail(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return '\n'.join(lines[-_LOG_TAIL:])


def container_name(name, version):
    safe = re.sub(r'[^a-zA-Z0-9_.-]', '-', name)
    return 'kb-build-%s-%s-%s' % (safe, version, uuid.uuid4().hex[:6])


def client_for(image, timeout):
    try:
        client = docker.from_env(timeout=max(60, timeout))
        client.images.get(image)
    except ImageNotFound:
        raise BuilderError('builder image %s is not on this docker host: build it first (role '
                           'llmops.bluegreen.images) or set builder_image to an existing qa-api image' % image)
    except DockerException as exc:
        raise BuilderError('cannot reach the docker engine: %s' % exc)
    return client


def run_container(client, image, command, name, volumes, labels, timeout, memory=DEFAULT_MEMORY,
                  pids_limit=DEFAULT_PIDS_LIMIT, keep=False, cpus=None, gpu_request=None):
    """Run one short-lived hardened container; return ``(exit_code, stdout, stderr)``.

    An out-of-memory kill is reported as a BuilderError naming the limit. ``keep`` leaves the
    container for inspection (tests). ``gpu_request``: from gpu_plan.
    """
    container = None
    what = ' '.join(command[:3])
    options = hardening(memory, pids_limit, cpus)
    if gpu_request:
        options['device_requests'] = [docker.types.DeviceRequest(**gpu_request)]
    try:
        container = client.containers.create(
            image,
            command=command,
            name=name,
            environment={
                'HOME': '/tmp',
                'HF_HUB_OFFLINE': '1',
                'TRANSFORMERS_OFFLINE': '1',
            },
            volumes=volumes,
            labels=labels,
            **options
        )
        container.start()
        try:
            status = container.wait(timeout=timeout)
        except Exception as exc:  # requests' ReadTimeout / ConnectionError, version dependent
            raise BuilderError('%s did not finish within %d seconds (%s): raise timeout= for large document '
                               'sets or models' % (what, timeout, exc))
        exit_code = status.get('StatusCode', -1) if isinstance(status, dict) else -1
        stdout = container.logs(stdout=True, stderr=False).decode('utf-8', 'replace')
        stderr = container.logs(stdout=False, stderr=True).decode('utf-8', 'replace')
        container.reload()
        if container.attrs.get('State', {}).get('OOMKilled'):
            raise BuilderError('%s was killed for using more than its memory limit %s: a document needs more '
                               'memory to parse or embed than allowed; raise builder_memory (role variable '
                               'knowledge_base_builder_memory) if the documents are genuine' % (what, memory))
    except DockerException as exc:
        raise BuilderError('running %s in %s failed: %s' % (what, image, exc))
    finally:
        if container is not None and not keep:
            try:
                container.remove(force=True)
            except DockerException:
                pass
    return exit_code, stdout, stderr
