# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where kb_build's builder embeds: the GPU request it gives the container, and the builder options."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_builder import builder_command
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_container import BuilderError, gpu_plan
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_inputs import validate_params

RUNC = ['io.containerd.runc.v2', 'runc']
WITH_NVIDIA = RUNC + ['nvidia']


def test_cpu_asks_for_no_gpu_even_on_a_gpu_engine():
    assert gpu_plan('cpu', WITH_NVIDIA, ['0']) == ('cpu', None)


def test_auto_asks_for_the_gpus_only_where_the_engine_can_give_them():
    assert gpu_plan('auto', RUNC) == ('cpu', None)
    device, request = gpu_plan('auto', WITH_NVIDIA)
    assert device == 'auto' and request == {'driver': 'nvidia', 'capabilities': [['gpu']], 'count': -1}


def test_gpu_asks_for_the_named_gpus_and_makes_the_builder_require_one():
    device, request = gpu_plan('gpu', WITH_NVIDIA, [1, 'GPU-8f2c'])
    assert device == 'cuda'
    assert request == {'driver': 'nvidia', 'capabilities': [['gpu']], 'device_ids': ['1', 'GPU-8f2c']}


def test_gpu_on_an_engine_without_the_nvidia_runtime_is_refused_naming_the_fix():
    with pytest.raises(BuilderError) as err:
        gpu_plan('gpu', RUNC)
    message = str(err.value)
    assert 'no nvidia runtime (it has: io.containerd.runc.v2, runc)' in message
    assert 'docker_host_nvidia: true' in message and 'embedding_device to auto or cpu' in message


def command(tuning):
    return builder_command('kb', 'v1', '.tmp', 600, 80, '/m', 'mini', 'e.sqlite', None, tuning)


def test_the_builder_is_told_only_what_is_set_so_an_older_image_builds_as_before():
    plain = command(None)
    assert not [a for a in plain if a.startswith(('--batch-size', '--threads', '--device'))]
    assert command(dict(device='cpu', threads=None, batch_size=None)) == plain
    tuned = command(dict(device='cuda', threads=2, batch_size=16))
    assert tuned[len(plain):] == ['--batch-size=16', '--threads=2', '--device=cuda']


def params(**overrides):
    values = dict(name='kb', chunk_size=600, chunk_overlap=80, timeout=60, max_file_bytes=1, max_total_bytes=1,
                  max_unzipped_bytes=1, max_zip_ratio=1, builder_pids_limit=1, identity=None,
                  embedding_device='cpu', embedding_gpus=[], embedding_threads=None)
    values.update(overrides)
    return values


def test_bad_tuning_is_refused_naming_the_option():
    assert validate_params(params()) is None
    assert validate_params(params(embedding_device='auto', embedding_gpus=['0'], embedding_threads=4)) is None
    assert 'embedding_threads must be between 1 and 1024 (got 0)' in validate_params(params(embedding_threads=0))
    problem = validate_params(params(embedding_gpus=['0', '1']))
    assert 'embedding_gpus 0,1 is given but embedding_device is cpu' in problem
