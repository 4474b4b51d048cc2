# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet color's spec inputs: the reports of its hosts merged (pure), and the digest cache
that two modules of one run share."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._spec import SpecError, merge_host_digests
from ansible_collections.llmops.bluegreen.plugins.module_utils._spec_host import HostDigests, current

IMAGE = 'llmops/qa-api:0.1.0'
MODEL = '/srv/models/qwen'
KB = '/var/lib/llmops/qa/kb/v1'


def report(host, image_id='sha256:aaa', model='tree:m1', kb=None):
    mounts = {MODEL: model}
    if kb is not None:
        mounts[KB] = kb
    return {'host': host, 'image_ids': {IMAGE: image_id}, 'mounts': mounts, 'observed': {'qa': {'exists': False}}}


def test_the_color_hosts_digests_are_the_spec_and_shipped_paths_come_from_here():
    ids, mounts, warnings = merge_host_digests([report('gpu-a'), report('gpu-b')], {KB: 'tree:kb1'})
    assert ids == {IMAGE: 'sha256:aaa'}
    assert mounts == {MODEL: 'tree:m1', KB: 'tree:kb1'}
    assert warnings == []


def test_a_model_only_the_gateway_lacks_is_hashed_where_it_runs():
    # The gateway never reads MODEL: the color host's digest is what enters the spec.
    ids, mounts, _w = merge_host_digests([report('gpu-a', model='tree:on-gpu-a')], {})
    assert mounts[MODEL] == 'tree:on-gpu-a'


def test_a_model_missing_on_one_host_is_refused_naming_it():
    with pytest.raises(SpecError, match=r'/srv/models/qwen does not exist on gpu-b: create it there'):
        merge_host_digests([report('gpu-a'), report('gpu-b', model=None)], {})


def test_a_model_that_differs_between_hosts_is_refused_with_both_digests():
    with pytest.raises(SpecError, match=r'differs between the hosts of the color \(gpu-a tree:m1, gpu-b tree:m2\)'):
        merge_host_digests([report('gpu-a'), report('gpu-b', model='tree:m2')], {})


def test_images_must_be_on_every_host_with_one_id():
    with pytest.raises(SpecError, match=r'image llmops/qa-api:0.1.0 is not on gpu-b: ship it there first'):
        merge_host_digests([report('gpu-a'), report('gpu-b', image_id=None)], {})
    with pytest.raises(SpecError, match=r'different IDs on the hosts of the color \(gpu-a sha256:aaa, gpu-b sha256:bbb\)'):
        merge_host_digests([report('gpu-a'), report('gpu-b', image_id='sha256:bbb')], {})


def test_check_mode_warns_instead_of_failing():
    ids, mounts, warnings = merge_host_digests([report('gpu-a', image_id=None, model=None)], {}, check_mode=True)
    assert ids == {IMAGE: None}
    assert mounts == {MODEL: 'absent'}
    assert any('image llmops/qa-api:0.1.0 is not on gpu-a yet' in w for w in warnings)
    assert any('/srv/models/qwen does not exist on gpu-a yet' in w for w in warnings)


def test_a_stale_copy_of_a_shipped_path_on_a_host_is_refused():
    merge_host_digests([report('gpu-a', kb='tree:kb1')], {KB: 'tree:kb1'})  # the same copy: fine
    with pytest.raises(SpecError, match=r'/var/lib/llmops/qa/kb/v1 on gpu-a differs from the copy the release ships'):
        merge_host_digests([report('gpu-a', kb='tree:other')], {KB: 'tree:kb1'})


def test_no_report_is_an_error_that_says_what_to_give():
    with pytest.raises(SpecError, match='color_digests'):
        merge_host_digests([], {})


def test_the_digest_cache_keeps_what_another_module_of_the_run_wrote(tmp_path):
    cache = tmp_path / 'model-digests.json'
    model, kb = tmp_path / 'model.gguf', tmp_path / 'kb.faiss'
    model.write_bytes(b'GGUF' * 1000)
    kb.write_bytes(b'FAISS')
    first = HostDigests(str(cache))  # color_digests: the model
    first.digest(str(model))
    first.save()
    second = HostDigests(str(cache))  # color_spec, same run: only the shipped KB
    second.digest(str(kb))
    second.save()
    third = HostDigests(str(cache))
    third.digest(str(model))
    assert third.hashed == 0, 'the model must not be read again because another module saved after it'
    # An entry whose file changed is dropped at the next save.
    model.write_bytes(b'GGUF-2')
    third.save()
    keys = json.loads(cache.read_text())
    assert all(current(key) for key in keys) and len(keys) == 1


def test_a_missing_path_is_none_only_when_allowed(tmp_path):
    digests = HostDigests(str(tmp_path / 'cache.json'))
    assert digests.digest(str(tmp_path / 'nope'), missing_ok=True) is None
    with pytest.raises(SpecError, match='cannot be read'):
        digests.digest(str(tmp_path / 'nope'))
