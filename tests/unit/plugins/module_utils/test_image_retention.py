# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_prune's decision, without Docker: which builds of the collection's images stay."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._image_retention import (
    RetentionError, candidate_name, plan, read_spec_file, spec_images)


def build(n, name='qa-api', created=None, extra=()):
    tag = 'llmops/%s:0.1.0-%012x' % (name, n)
    return {'id': 'sha256:%s%04d' % (name, n), 'tags': [tag] + list(extra), 'created': n if created is None else created}


def tags(builds):
    return [t for b in builds for t in b['tags']]


def test_candidates_are_only_the_roles_build_tags():
    assert candidate_name('llmops/qa-api:0.1.0-87e79fe23199', 'llmops') == 'qa-api'
    assert candidate_name('llmops/base:bookworm', 'llmops') is None
    assert candidate_name('llmops/qa-api:spectest-8a1504', 'llmops') is None
    assert candidate_name('other/qa-api:0.1.0-87e79fe23199', 'llmops') is None
    assert candidate_name('llmops/qa-api:0.1.0-87e79fe23199', 'llmops', ['gateway']) is None
    assert candidate_name('llmopsx/qa-api:0.1.0-87e79fe23199', 'llmops') is None
    assert candidate_name('reg:5000/llmops/qa-api', 'reg:5000/llmops') is None  # no tag: latest


def test_keeps_the_newest_per_name_and_removes_the_rest():
    images = [build(n) for n in range(1, 5)] + [build(n, 'gateway') for n in range(1, 3)]
    kept, removed = plan(images, 2, set(), set(), 'llmops')
    assert [b['id'] for b in kept] == ['sha256:gateway0002', 'sha256:gateway0001', 'sha256:qa-api0004',
                                       'sha256:qa-api0003']
    assert [b['id'] for b in removed] == ['sha256:qa-api0002', 'sha256:qa-api0001']
    assert removed[0]['why'] == 'older than the 2 newest'


def test_an_image_a_container_uses_or_a_spec_names_stays():
    images = [build(n) for n in range(1, 6)]
    kept, removed = plan(images, 1, {'sha256:qa-api0001'}, {'llmops/qa-api:0.1.0-000000000003'}, 'llmops')
    why = dict((b['id'], b['why']) for b in kept)
    assert why == {'sha256:qa-api0005': 'one of the 1 newest', 'sha256:qa-api0003': 'protected (a color spec or '
                   'the current build)', 'sha256:qa-api0001': 'a container uses it'}
    assert sorted(b['id'] for b in removed) == ['sha256:qa-api0002', 'sha256:qa-api0004']
    # By image ID too (a spec records image_id).
    kept, _removed = plan(images, 1, set(), {'sha256:qa-api0002'}, 'llmops')
    assert 'sha256:qa-api0002' in [b['id'] for b in kept]


def test_other_tags_are_never_candidates_and_are_left_on_the_image():
    images = [build(1, extra=['llmops/qa-api:spectest-1', 'mine/keep:me']), build(2), build(3),
              {'id': 'sha256:base', 'tags': ['llmops/base:bookworm'], 'created': 0}]
    kept, removed = plan(images, 2, set(), set(), 'llmops')
    assert tags(removed) == ['llmops/qa-api:0.1.0-000000000001']
    assert 'llmops/base:bookworm' not in tags(kept + removed)


def test_names_limit_what_is_pruned():
    images = [build(n) for n in range(1, 4)] + [build(n, 'gateway') for n in range(1, 4)]
    _kept, removed = plan(images, 1, set(), set(), 'llmops', ['gateway'])
    assert [b['name'] for b in removed] == ['gateway', 'gateway']


def test_bad_keep_or_repository_is_refused():
    with pytest.raises(RetentionError, match='keep must be at least 1'):
        plan([], 0, set(), set(), 'llmops')
    with pytest.raises(RetentionError, match='repository prefix'):
        plan([], 2, set(), set(), 'Not A Repo')


def test_spec_images_reads_both_colors_specs(tmp_path):
    fp_blue, fp_green = 'a' * 64, 'b' * 64
    for fp, tag in ((fp_blue, '1'), (fp_green, '2')):
        (tmp_path / ('%s.json' % fp)).write_text(json.dumps({'containers': {
            'qa': {'image': 'llmops/qa-api:0.1.0-00000000000' + tag, 'image_id': 'sha256:q' + tag},
            'llm': {'image': 'llmops/llm-llamacpp:0.1.0-00000000000' + tag, 'image_id': 'sha256:l' + tag}}}))
    state = {'colors': {'blue': {'release': fp_blue}, 'green': {'release': fp_green}, 'old': {}}}
    refs = spec_images(state, read_spec_file(str(tmp_path)))
    assert refs == {'llmops/qa-api:0.1.0-000000000001', 'sha256:q1', 'llmops/llm-llamacpp:0.1.0-000000000001',
                    'sha256:l1', 'llmops/qa-api:0.1.0-000000000002', 'sha256:q2',
                    'llmops/llm-llamacpp:0.1.0-000000000002', 'sha256:l2'}
    assert spec_images(None, read_spec_file(str(tmp_path))) == set()


def test_a_missing_spec_removes_nothing(tmp_path):
    with pytest.raises(RetentionError, match='color blue runs release c+ but its spec is missing'):
        spec_images({'colors': {'blue': {'release': 'c' * 64}}}, read_spec_file(str(tmp_path)))
    with pytest.raises(RetentionError, match='not a fingerprint'):
        spec_images({'colors': {'blue': {'release': '../x'}}}, read_spec_file(str(tmp_path)))
