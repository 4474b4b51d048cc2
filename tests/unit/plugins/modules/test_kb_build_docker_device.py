# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kb_build's embedding device for real: the builder CLI in the qa-api image on the local engine.

This engine has no GPU and no nvidia runtime. The tests whose name says "gpu engine double" give
the module a real docker client wrapped so that ``docker info`` lists an nvidia runtime and
``containers.create`` records the GPU request it was given, then creates the container without it
(or refuses it as an engine whose driver is gone does). The builder, the image and the KB are real.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil

import pytest

from _docker_fixtures import docker_client_with
from ansible_collections.llmops.bluegreen.plugins.module_utils import _kb_builder
from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import fingerprint
from ansible_collections.llmops.bluegreen.plugins.modules import kb_build

pytestmark = pytest.mark.docker

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'examples', 'docs')
IMAGE = os.environ.get('LLMOPS_QA_API_IMAGE', 'llmops/qa-api:dev')


class GpuEngineDouble(object):
    """A real docker client; its engine claims the nvidia runtime and never hands out a GPU."""

    def __init__(self, real, refuse=False):
        self.real, self.refuse, self.requests, self.commands = real, refuse, [], []

    def info(self):
        info = self.real.info()
        info['Runtimes'] = dict(info.get('Runtimes') or {}, nvidia={'path': 'nvidia-container-runtime'})
        return info

    @property
    def containers(self):
        return self

    def create(self, image, **options):
        requests = options.pop('device_requests', None)
        self.requests.append([dict(r) for r in requests or []])
        self.commands.append(options['command'])
        if requests and self.refuse:
            import docker
            raise docker.errors.APIError('could not select device driver "nvidia" with capabilities: [[gpu]]')
        return self.real.containers.create(image, **options)


@pytest.fixture(scope='module')
def client():
    return docker_client_with(IMAGE, 'build images/qa-api or set LLMOPS_QA_API_IMAGE')


@pytest.fixture
def args(client, tmp_path):
    docs = str(tmp_path / 'docs')
    shutil.copytree(EXAMPLES, docs)
    return {'docs': docs, 'kb_root': str(tmp_path / 'kb'), 'name': 'handbook', 'builder_image': IMAGE,
            'timeout': 900}


def manifest_of(result):
    with open(os.path.join(result['path'], 'manifest.json')) as handle:
        return json.load(handle)


def warnings_of(result):
    """The module's warnings as one text (plain strings or, in newer ansible-core, dicts)."""
    return json.dumps(result.get('warnings', []))


def add_document(args, text):
    with open(os.path.join(args['docs'], 'added.md'), 'w') as handle:
        handle.write(text)


def test_auto_on_an_engine_without_gpus_embeds_on_the_cpu_and_gpu_is_refused_old_version_intact(run_module, args):
    failed, first = run_module(kb_build, dict(args, embedding_device='auto', embedding_threads=1))
    assert not failed, first['msg']
    assert first['built'] and manifest_of(first)['embedding']['device'] == 'cpu'
    assert 'GPU' not in warnings_of(first)  # (other tests' warnings may be in this process's list)
    before = fingerprint(first['path'], exclude_manifest=False)
    add_document(args, '# Parking\n\nVisitors park on level -2 and register at the front desk.\n')
    failed, refused = run_module(kb_build, dict(args, embedding_device='gpu'))
    assert failed and 'embedding_device gpu: the Docker engine has no nvidia runtime' in refused['msg']
    assert 'docker_host_nvidia: true' in refused['msg']
    name_dir = os.path.dirname(first['path'])
    assert sorted(os.listdir(name_dir)) == ['.cache', first['version']]  # no temp dir, no new version
    assert fingerprint(first['path'], exclude_manifest=False) == before


def test_auto_on_a_gpu_engine_double_gives_the_builder_the_gpus_and_warns_they_were_unused(
        run_module, args, client, monkeypatch):
    engine = GpuEngineDouble(client)
    monkeypatch.setattr(_kb_builder, '_client', lambda image, timeout: engine)
    failed, result = run_module(kb_build, dict(args, embedding_device='auto', embedding_gpus=['0']))
    assert not failed, result['msg']
    assert engine.requests[-1] == [{'Driver': 'nvidia', 'Count': 0, 'DeviceIDs': ['0'], 'Capabilities': [['gpu']],
                                    'Options': {}}]
    assert '--device=auto' in engine.commands[-1]
    assert manifest_of(result)['embedding']['device'] == 'cpu'  # the image's ONNX Runtime is a CPU build
    warning = warnings_of(result)
    assert 'given the GPUs but embedded on the CPU: no CUDA device in the builder' in warning


def test_gpu_on_a_gpu_engine_double_with_a_cpu_image_fails_naming_the_image_fix(run_module, args, client, monkeypatch):
    engine = GpuEngineDouble(client)
    monkeypatch.setattr(_kb_builder, '_client', lambda image, timeout: engine)
    failed, result = run_module(kb_build, dict(args, embedding_device='gpu'))
    assert failed and engine.requests[-1][0]['Count'] == -1 and '--device=cuda' in engine.commands[-1]
    assert 'cannot embed on a GPU' in result['msg'] and 'onnxruntime-gpu' in result['msg']
    assert os.listdir(os.path.join(args['kb_root'], 'handbook')) == ['.cache']


def test_auto_builds_on_the_cpu_when_a_gpu_engine_double_refuses_the_gpus(run_module, args, client, monkeypatch):
    engine = GpuEngineDouble(client, refuse=True)
    monkeypatch.setattr(_kb_builder, '_client', lambda image, timeout: engine)
    failed, result = run_module(kb_build, dict(args, embedding_device='auto'))
    assert not failed, result['msg']
    # the identity query (never a GPU), the build refused its GPUs, the build on the CPU
    assert [bool(r) for r in engine.requests] == [False, True, False]
    assert '--device=auto' not in engine.commands[-1]
    assert manifest_of(result)['embedding']['device'] == 'cpu'
    assert 'refused the GPU request' in warnings_of(result)
