# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kb_prune: old knowledge base versions go, the newest and every one in use stay."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_retention import plan
from ansible_collections.llmops.bluegreen.plugins.modules import kb_prune


def version(root, name, hour):
    path = root / name
    path.mkdir(parents=True)
    (path / 'manifest.json').write_text(json.dumps({'created_at': '2026-12-01T%02d:00:00Z' % hour}))
    (path / 'chunks.jsonl').write_text('{}\n')
    return path


@pytest.fixture
def kb(tmp_path):
    root = tmp_path / 'kb' / 'handbook'
    for hour, name in enumerate(['v0', 'v1', 'v2', 'v3', 'v4', 'v5']):
        version(root, name, hour)
    (root / '.cache').mkdir()
    (root / '.tmp-v6-abc').mkdir()  # a build in progress
    (root / 'notes').mkdir()  # not a version: no manifest
    return root


def test_plan_keeps_the_newest_and_the_protected():
    versions = {'a': 1, 'b': 2, 'c': 3, 'd': 4}
    assert plan(versions, 2, {'a'}) == (['d', 'c', 'a'], ['b'])
    assert plan(versions, 10, set()) == (['d', 'c', 'b', 'a'], [])
    with pytest.raises(ValueError, match='at least 1'):
        plan(versions, 0, set())


def test_removes_old_versions_but_never_a_mounted_one(run_module, kb):
    failed, result = run_module(kb_prune, {'path': str(kb), 'keep': 2, 'protect': [str(kb / 'v1'), 'v0/']})
    assert not failed and result['changed']
    assert result['kept'] == ['v5', 'v4', 'v1', 'v0'] and result['removed'] == ['v3', 'v2']
    assert sorted(os.listdir(str(kb))) == ['.cache', '.tmp-v6-abc', 'notes', 'v0', 'v1', 'v4', 'v5']
    # Again: nothing left to do.
    failed, result = run_module(kb_prune, {'path': str(kb), 'keep': 2, 'protect': ['v1', 'v0']})
    assert not failed and not result['changed'] and result['removed'] == []


def test_check_mode_and_diff_change_nothing(run_module, kb):
    failed, result = run_module(kb_prune, {'path': str(kb), 'keep': 3}, check_mode=True, diff=True)
    assert not failed and result['changed'] and result['removed'] == ['v2', 'v1', 'v0']
    assert result['diff']['before'].split() == ['v0', 'v1', 'v2', 'v3', 'v4', 'v5']
    assert result['diff']['after'].split() == ['v3', 'v4', 'v5']
    assert {'v0', 'v1', 'v2'} <= set(os.listdir(str(kb)))


def test_a_path_outside_the_knowledge_base_protects_nothing(run_module, kb, tmp_path):
    version(tmp_path / 'elsewhere', 'v0', 0)
    failed, result = run_module(kb_prune, {'path': str(kb), 'keep': 1, 'protect': [str(tmp_path / 'elsewhere' / 'v0')]})
    assert not failed and result['kept'] == ['v5']


def test_leftovers_of_an_interrupted_prune_are_deleted(run_module, kb):
    (kb / '.removing-v9-xyz' / 'v9').mkdir(parents=True)
    failed, result = run_module(kb_prune, {'path': str(kb), 'keep': 10})
    assert not failed and result['changed'] and result['leftovers'] == ['.removing-v9-xyz']
    assert not (kb / '.removing-v9-xyz').exists()


def test_a_missing_directory_is_nothing_to_prune(run_module, tmp_path):
    failed, result = run_module(kb_prune, {'path': str(tmp_path / 'none')})
    assert not failed and not result['changed'] and 'nothing to prune' in result['msg']


def test_keep_zero_is_refused_naming_the_rule(run_module, kb):
    failed, result = run_module(kb_prune, {'path': str(kb), 'keep': 0})
    assert failed and 'keep must be at least 1' in result['msg']
    assert len([e for e in os.listdir(str(kb)) if e.startswith('v')]) == 6
