# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The color spec and its fingerprint: pure decisions, no Docker."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import os

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._spec import (
    CONTAINER_KEYS,
    DigestCache,
    SpecError,
    bind_sources,
    build_spec,
    check_definition,
    describe_change,
    fingerprint,
    keyed_digest,
    mask_placement,
    normalize,
    path_digest,
    stamp,
)


def qa_definition(color='blue', **env):
    base_env = {'QA_COLOR': color, 'QA_TOP_K': '4', 'QA_LLM_BASE_URL': 'http://qa-llm-%s:8000/v1' % color}
    base_env.update(env)
    return {'name': 'qa-qa-%s' % color, 'image': 'llmops/qa-api:1', 'env': base_env,
            'labels': {'llmops.color': color, 'llmops.service': 'qa'},
            'mounts': [{'type': 'bind', 'source': '/kb/v1', 'target': '/kb', 'read_only': True}]}


def spec_for(color='blue', qa=None, llm=None, image_ids=None, mounts=None, secrets=None, kb=None):
    containers = {'qa': qa or qa_definition(color),
                  'llm': llm if llm is not None else {'name': 'qa-llm-%s' % color, 'image': 'llmops/llm:1',
                                                      'env': {'LLM_THREADS': '2'}}}
    return build_spec('qa', color, containers, image_ids or {'llmops/qa-api:1': 'sha256:aa', 'llmops/llm:1': 'sha256:bb'},
                      mounts or {'/kb/v1': 'tree:11'}, secrets or {'redis_password': 'hmac-sha256:cc'},
                      kb or {'version': 'v1', 'checksum': 'c1'})


def test_same_release_has_the_same_fingerprint_on_both_colors():
    assert fingerprint(spec_for('blue'), 'qa', 'blue') == fingerprint(spec_for('green'), 'qa', 'green')


# One row per input that changes what a color runs: each alone must change the fingerprint.
CHANGES = [
    ('llama.cpp threads', dict(llm={'name': 'qa-llm-blue', 'image': 'llmops/llm:1', 'env': {'LLM_THREADS': '4'}})),
    ('top_k', dict(qa=qa_definition(QA_TOP_K='8'))),
    ('qa-api image', dict(image_ids={'llmops/qa-api:1': 'sha256:a2', 'llmops/llm:1': 'sha256:bb'})),
    ('llm image', dict(image_ids={'llmops/qa-api:1': 'sha256:aa', 'llmops/llm:1': 'sha256:b2'})),
    ('model file content', dict(mounts={'/kb/v1': 'tree:11', '/models/m.gguf': 'sha256:22'})),
    ('kb content', dict(mounts={'/kb/v1': 'tree:12'})),
    ('redis password', dict(secrets={'redis_password': 'hmac-sha256:dd'})),
    ('kb version', dict(kb={'version': 'v2', 'checksum': 'c2'})),
]


@pytest.mark.parametrize('label,change', CHANGES, ids=[row[0] for row in CHANGES])
def test_each_input_alone_changes_the_fingerprint(label, change):
    assert fingerprint(spec_for('blue', **change), 'qa', 'blue') != fingerprint(spec_for('blue'), 'qa', 'blue')


def test_normalize_replaces_only_the_colors_own_names():
    data = {'name': 'qa-qa-green', 'env': {'QA_COLOR': 'green', 'PATH': '/srv/greenhouse/green-models'},
            'other': 'qa-qa-blue'}
    out = normalize(data, 'qa', 'green')
    assert out == {'name': 'qa-qa-{color}', 'env': {'QA_COLOR': '{color}', 'PATH': '/srv/greenhouse/green-models'},
                   'other': 'qa-qa-blue'}


def test_stamp_adds_label_and_env_without_touching_the_input():
    definition = qa_definition()
    before = copy.deepcopy(definition)
    stamped = stamp(definition, 'f' * 64, env=True)
    assert definition == before
    assert stamped['labels']['llmops.release'] == 'f' * 64
    assert stamped['env']['QA_RELEASE'] == 'f' * 64
    assert 'QA_RELEASE' not in stamp(definition, 'f' * 64)['env']


def test_unknown_definition_key_is_refused_with_the_allowed_ones():
    with pytest.raises(SpecError) as err:
        check_definition('qa', dict(qa_definition(), volumes=['/x:/y']))
    assert 'volumes' in str(err.value) and 'mounts' in str(err.value)
    check_definition('qa', qa_definition())
    assert {'name', 'image', 'env', 'mounts', 'device_requests'} <= CONTAINER_KEYS


def test_bind_sources_lists_bind_mounts_only():
    definition = dict(qa_definition(), mounts=[{'type': 'bind', 'source': '/a', 'target': '/a'},
                                               {'type': 'volume', 'source': 'data', 'target': '/d'}])
    assert bind_sources(definition) == ['/a']


def test_path_digest_of_file_and_tree_follows_content(tmp_path):
    model = tmp_path / 'model'
    model.mkdir()
    (model / 'config.json').write_text('{"dim": 384}')
    (model / 'weights.bin').write_bytes(b'\0' * 1000)
    cache = DigestCache()
    first = path_digest(str(model), cache)
    assert first.startswith('tree:')
    assert path_digest(str(model), DigestCache(cache.used)) == first
    (model / 'config.json').write_text('{"dim": 385}')
    assert path_digest(str(model), DigestCache(cache.used)) != first
    assert path_digest(str(model / 'weights.bin'), cache).startswith('sha256:')


def test_digest_cache_reads_a_file_once_while_it_is_unchanged(tmp_path):
    big = tmp_path / 'model.gguf'
    big.write_bytes(os.urandom(4096))
    cache = DigestCache()
    path_digest(str(big), cache)
    assert cache.hashed == 4096
    again = DigestCache(cache.used)
    path_digest(str(big), again)
    assert again.hashed == 0


def test_missing_mount_names_the_path(tmp_path):
    with pytest.raises(SpecError) as err:
        path_digest(str(tmp_path / 'nope'), DigestCache())
    assert str(tmp_path / 'nope') in str(err.value)


def test_keyed_digest_hides_the_secret_but_tracks_it():
    key = b'k' * 32
    digest = keyed_digest(key, 'hunter2hunter2')
    assert 'hunter2' not in digest
    assert digest == keyed_digest(key, 'hunter2hunter2') != keyed_digest(key, 'hunter3hunter3')
    assert keyed_digest(b'x' * 32, 'hunter2hunter2') != digest


def test_describe_change_names_what_differs_across_colors():
    old = spec_for('blue')
    new = spec_for('green', qa=qa_definition('green', QA_TOP_K='8'))
    assert describe_change(old, new, 'qa', 'blue', 'green') == ['containers.qa.env.QA_TOP_K']
    assert describe_change(None, new, 'qa', 'blue', 'green')


def vllm_definition(color, gpus, share, max_len='8192'):
    return {'name': 'qa-llm-%s' % color, 'image': 'llmops/llm:1',
            'command': ['--model', '/models/model', '--gpu-memory-utilization', share, '--max-model-len', max_len],
            'device_requests': [{'driver': 'nvidia', 'device_ids': gpus, 'capabilities': [['gpu']]}]}


def test_gpu_placement_is_the_colors_own_and_not_part_of_the_fingerprint():
    # Blue on GPU 0 at 0.9, green on GPU 1 at 0.45: the same release, one fingerprint (else every
    # deploy would release again to the other color).
    blue = spec_for('blue', llm=vllm_definition('blue', ['0'], '0.9'))
    green = spec_for('green', llm=vllm_definition('green', ['1'], '0.45'))
    assert fingerprint(blue, 'qa', 'blue') == fingerprint(green, 'qa', 'green')
    assert describe_change(blue, green, 'qa', 'blue', 'green') == []
    # The spec itself keeps what Docker is given.
    assert green['containers']['llm']['device_requests'][0]['device_ids'] == ['1']


def test_a_change_beside_the_placement_still_changes_the_fingerprint():
    blue = spec_for('blue', llm=vllm_definition('blue', ['0'], '0.9'))
    longer = spec_for('blue', llm=vllm_definition('blue', ['0'], '0.9', max_len='16384'))
    assert fingerprint(blue, 'qa', 'blue') != fingerprint(longer, 'qa', 'blue')
    assert describe_change(blue, longer, 'qa', 'blue', 'blue') == ['containers.llm.command']


def test_mask_placement_covers_both_option_forms_and_leaves_the_input_alone():
    definition = vllm_definition('blue', ['0'], '0.9')
    definition['command'] = ['--gpu-memory-utilization=0.9', '--max-model-len', '8192']
    spec = spec_for('blue', llm=definition)
    masked = mask_placement(spec)
    assert masked['containers']['llm']['command'] == ['--gpu-memory-utilization={placement}', '--max-model-len', '8192']
    assert masked['containers']['llm']['device_requests'][0]['device_ids'] == '{placement}'
    assert spec['containers']['llm']['command'][0] == '--gpu-memory-utilization=0.9'
    # A llama.cpp definition has no placement: its spec is unchanged (so are its fingerprints).
    assert mask_placement(spec_for('blue')) == spec_for('blue')
