# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GPU budget: which vLLM server goes on which GPU of a host with what memory share,
and the refusal of GPUs whose shares add up to more than 1.0. Pure: no Docker, no GPU
(running containers are docker-inspect dicts written out here)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.filter.gpu_budget import FilterModule
from ansible_collections.llmops.bluegreen.plugins.module_utils._gpu_budget import (
    budget,
    even_share,
    gpu_ids,
    running_placement,
)

GPU_BUDGET = FilterModule().filters()['gpu_budget']


def host(mode='independent', gpus=('0',), share=0.9, color_gpus=None, color_shares=None, **extra):
    return dict({'mode': mode, 'gpus': list(gpus), 'share': share, 'color_gpus': color_gpus or {},
                 'color_shares': color_shares or {}}, **extra)


def inspect(name, gpus, command=None, running=True):
    """What docker inspect says of a container, as far as the budget reads it (a double, no GPU)."""
    return {'Name': '/' + name, 'State': {'Running': running},
            'HostConfig': {'DeviceRequests': [{'Driver': 'nvidia', 'Count': 0, 'DeviceIDs': list(gpus),
                                               'Capabilities': [['gpu']]}]},
            'Config': {'Cmd': command if command is not None else ['--model', '/models/model']}}


def test_each_color_on_its_own_gpu_fits():
    result = GPU_BUDGET({'gpu-a': host(color_gpus={'blue': ['0'], 'green': ['1']})})
    assert result['ok'] and result['problems'] == []
    assert result['placement'] == {'gpu-a': {'blue': {'gpus': ['0'], 'share': 0.9},
                                             'green': {'gpus': ['1'], 'share': 0.9}}}
    assert result['usage'] == {'gpu-a': {'0': {'blue': 0.9}, '1': {'green': 0.9}}}
    assert result['message'] == 'GPU budget fits: gpu-a: GPU 0: blue 0.9 (0.9 of 1.0); GPU 1: green 0.9 (0.9 of 1.0)'


def test_two_colors_sharing_a_gpu_fit_at_045_each_and_exactly_at_1():
    assert GPU_BUDGET({'gpu-a': host(color_shares={'blue': 0.45, 'green': 0.45})})['ok']
    # Float sums: 0.3 + 0.7 and 0.1 + 0.9 are 1.0, not a hair over.
    assert GPU_BUDGET({'gpu-a': host(color_shares={'blue': 0.3, 'green': 0.7})})['ok']
    assert GPU_BUDGET({'gpu-a': host(color_shares={'blue': '0.1', 'green': '0.9'})})['ok']


def test_two_colors_at_090_on_one_gpu_are_refused_naming_host_gpu_colors_shares_and_fix():
    result = GPU_BUDGET({'gpu-a': host()})
    assert not result['ok'] and len(result['problems']) == 1
    message = result['message']
    assert message.startswith('GPU placement refused. On gpu-a, GPU 0 would hold blue 0.9 + green 0.9 = 1.8 of its memory')
    assert 'give green GPU 1 with inference_vllm_color_gpus (e.g. {blue: ["0"], green: ["1"]})' in message
    assert ('lower the shares to 0.45 each with inference_vllm_color_gpu_memory_utilization '
            '(e.g. {blue: 0.45, green: 0.45})') in message
    assert 'host_vars' in message


def test_an_overflow_on_one_of_several_gpus_names_that_gpu_and_a_free_one():
    # Tensor parallel: blue on 0 and 1, green on 1 at 0.6: GPU 1 holds 1.5, GPU 0 is fine.
    result = budget({'gpu-a': host(color_gpus={'blue': ['0', '1'], 'green': ['1']}, color_shares={'green': 0.6})})
    assert len(result['problems']) == 1
    assert 'GPU 1 would hold blue 0.9 + green 0.6 = 1.5' in result['message']
    assert 'give green GPU 2 with inference_vllm_color_gpus (e.g. {blue: ["0", "1"], green: ["2"]})' in result['message']


def test_gpu_uuids_get_no_invented_free_id():
    uuid = 'GPU-8f1c2a3b-0000-1111-2222-333344445555'
    result = budget({'gpu-a': host(gpus=[uuid])})
    assert 'GPU %s would hold blue 0.9 + green 0.9' % uuid in result['message']
    assert 'give green other GPUs with inference_vllm_color_gpus' in result['message']


def test_shared_mode_places_one_server_from_the_single_settings():
    result = budget({'gpu-a': host(mode='shared', gpus=['0', '1'], share=0.95, color_gpus={'blue': ['3']})})
    assert result['ok']
    assert result['placement'] == {'gpu-a': {'shared': {'gpus': ['0', '1'], 'share': 0.95}}}
    assert result['usage'] == {'gpu-a': {'0': {'shared': 0.95}, '1': {'shared': 0.95}}}


def test_placement_is_per_host_the_same_gpu_id_on_two_hosts_is_two_gpus():
    result = budget({
        # gpu-a: one GPU, both colors at 0.45; gpu-b: two GPUs, 0.9 each; gpu-c: 0.9 each on one GPU.
        'gpu-a': host(color_shares={'blue': 0.45, 'green': 0.45}),
        'gpu-b': host(color_gpus={'blue': ['0'], 'green': ['1']}),
        'gpu-c': host(),
    })
    assert result['placement']['gpu-a']['green'] == {'gpus': ['0'], 'share': 0.45}
    assert result['placement']['gpu-b']['green'] == {'gpus': ['1'], 'share': 0.9}
    assert len(result['problems']) == 1 and result['problems'][0].startswith('On gpu-c, GPU 0 would hold')
    assert result['usage']['gpu-a'] == {'0': {'blue': 0.45, 'green': 0.45}}


@pytest.mark.parametrize('share', [0, -0.2, 1.01, 'most', None, True, float('nan')])
def test_a_share_outside_0_1_is_refused(share):
    result = budget({'gpu-a': host(color_gpus={'blue': ['0'], 'green': ['1']}, color_shares={'green': share})})
    assert not result['ok']
    assert result['problems'] == ['On gpu-a, green has GPU memory share %r: give '
                                  'inference_vllm_color_gpu_memory_utilization a fraction in (0, 1] of each GPU\'s '
                                  'memory (e.g. 0.9 alone on a GPU, 0.45 for two servers on one).' % (share,)]


def test_a_share_of_exactly_1_alone_on_a_gpu_fits():
    assert budget({'gpu-a': host(share=1, color_gpus={'blue': ['0'], 'green': ['1']})})['ok']


def test_unknown_color_no_gpu_and_a_bad_map_are_refused():
    result = budget({'gpu-a': host(color_gpus={'blue': ['0'], 'gren': ['1']}, color_shares=[0.45])})
    messages = ' '.join(result['problems'])
    assert 'inference_vllm_color_gpus names gren, which is not a color: use blue and green' in messages
    assert 'inference_vllm_color_gpu_memory_utilization must map colors to values' in messages
    result = budget({'gpu-a': host(color_gpus={'blue': ['0'], 'green': []})})
    assert result['problems'] == ['On gpu-a, green has no GPU: give it device ids (inference_vllm_color_gpus).']
    shared = budget({'gpu-a': host(mode='shared', gpus=[], share=2)})
    assert 'the shared server has GPU memory share 2: give inference_vllm_gpu_memory_utilization' in shared['message']
    assert 'the shared server has no GPU: give it device ids (inference_vllm_gpus)' in shared['message']


def test_a_color_fits_next_to_the_other_as_it_runs_now():
    running = {'blue': inspect('qa-llm-blue', ['0'], ['--gpu-memory-utilization', '0.45'])}
    result = budget({'gpu-a': host(color_shares={'blue': 0.45, 'green': 0.45}, starting='green', running=running)})
    assert result['ok'], result['message']


def test_a_color_cannot_start_next_to_a_running_server_that_kept_its_old_share():
    # Blue was started at 0.90 (inspect double); the configuration now says 0.45 each on GPU 0.
    running = {'blue': inspect('qa-llm-blue', ['0'], ['--model', '/m', '--gpu-memory-utilization', '0.90']),
               'shared': None}
    result = budget({'gpu-a': host(color_shares={'blue': 0.45, 'green': 0.45}, starting='green', running=running)})
    assert not result['ok'] and len(result['problems']) == 1
    message = result['problems'][0]
    assert message.startswith('On gpu-a, green cannot start on GPU 0 with 0.45 of its memory: blue, running as '
                              'qa-llm-blue, holds 0.9 (0.45 + 0.9 = 1.35, at most 1.0).')
    assert 'give green a GPU that blue does not use (inference_vllm_color_gpus)' in message


def test_a_leftover_shared_server_counts_and_the_starting_servers_own_container_does_not():
    running = {'shared': inspect('qa-llm', ['0'], ['--gpu-memory-utilization=0.8']),
               'green': inspect('qa-llm-green', ['0'], ['--gpu-memory-utilization', '0.9'])}
    result = budget({'gpu-a': host(color_shares={'blue': 0.45, 'green': 0.45}, starting='green', running=running)})
    assert len(result['problems']) == 1
    assert 'the shared server, running as qa-llm, holds 0.8 (0.45 + 0.8 = 1.25' in result['problems'][0]


def test_running_servers_are_not_checked_when_the_configuration_is_refused():
    running = {'blue': inspect('qa-llm-blue', ['0'])}
    result = budget({'gpu-a': host(starting='green', running=running)})
    assert len(result['problems']) == 1 and 'would hold blue 0.9 + green 0.9' in result['problems'][0]


def test_running_placement_reads_an_inspect_double():
    assert running_placement(inspect('qa-llm-blue', ['1', '0'], ['--gpu-memory-utilization', '0.5'])) == \
        {'gpus': ['1', '0'], 'share': 0.5, 'name': 'qa-llm-blue'}
    # No share argument: vLLM's default 0.9.
    assert running_placement(inspect('qa-llm-blue', ['0']))['share'] == 0.9
    assert running_placement(inspect('qa-llm-blue', ['0'], running=False)) is None
    # A llama.cpp server has no device request: it holds no GPU.
    assert running_placement({'State': {'Running': True}, 'HostConfig': {'DeviceRequests': None}}) is None
    assert running_placement(None) is None


def test_gpu_ids_are_strings_in_order_without_repeats():
    assert gpu_ids([0, '1', 0]) == ['0', '1']
    assert gpu_ids('0, 1') == ['0', '1']
    assert gpu_ids(2) == ['2'] and gpu_ids(None) == [] and gpu_ids([]) == []


def test_even_share_keeps_headroom():
    assert [even_share(n) for n in (1, 2, 3)] == [0.9, 0.45, 0.3]


def test_input_that_is_not_hosts_fails_the_filter():
    with pytest.raises(AnsibleFilterError, match='gpu_budget: the GPU budget takes'):
        GPU_BUDGET([host()])
    with pytest.raises(AnsibleFilterError, match='the GPU settings of gpu-a must be a dict'):
        GPU_BUDGET({'gpu-a': 'independent'})


def test_a_fleet_host_carries_only_its_color():
    # One GPU host per color (inventories/production): both colors at 0.90 on GPU 0 of their own host fit.
    from ansible_collections.llmops.bluegreen.plugins.module_utils._gpu_budget import budget
    each = {'mode': 'independent', 'gpus': ['0'], 'share': 0.9}
    fleet = budget({'gpu-blue': dict(each, colors=['blue']), 'gpu-green': dict(each, colors=['green'])})
    assert fleet['ok'], fleet['message']
    assert fleet['placement'] == {'gpu-blue': {'blue': {'gpus': ['0'], 'share': 0.9}},
                                  'gpu-green': {'green': {'gpus': ['0'], 'share': 0.9}}}
    # The same settings on one host carrying both colors: refused, naming the host and GPU 0.
    one = budget({'gpu-a': dict(each, colors=['blue', 'green'])})
    assert not one['ok'] and 'gpu-a' in one['message'] and 'GPU 0' in one['message'], one['message']
    assert budget({'gpu-a': each})['ok'] is False
