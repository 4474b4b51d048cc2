# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bluegreen_lock: take, re-enter and release the lease of a service."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import time

from ansible_collections.llmops.bluegreen.plugins.modules import bluegreen_lock


def args(tmp_path, **extra):
    base = {'service': 'qa', 'state_dir': str(tmp_path)}
    base.update(extra)
    return base


def test_take_and_release(run_module, tmp_path):
    failed, taken = run_module(bluegreen_lock, args(tmp_path, operation='deploy', ttl=120), diff=True)
    assert not failed and taken['changed']
    lock_file = str(tmp_path / 'qa' / 'lock')
    assert taken['lock_file'] == lock_file
    with open(lock_file) as handle:
        assert json.load(handle)['token'] == taken['token']
    assert taken['holder']['operation'] == 'deploy'
    assert taken['diff']['before'] == '' and taken['token'] in taken['diff']['after']

    failed, other = run_module(bluegreen_lock, args(tmp_path, operation='rollback'))
    assert failed
    assert other['msg'].startswith('service qa is locked by %s (operation deploy, pid %d) since %s'
                                   % (taken['holder']['holder'], taken['holder']['pid'], taken['holder']['since']))

    failed, again = run_module(bluegreen_lock, args(tmp_path, token=taken['token']))
    assert not failed and not again['changed'] and again['token'] == taken['token']

    failed, released = run_module(bluegreen_lock, args(tmp_path, state='absent', token=taken['token']))
    assert not failed and released['changed'] and released['token'] is None
    assert not os.path.exists(lock_file)
    failed, noop = run_module(bluegreen_lock, args(tmp_path, state='absent', token=taken['token']))
    assert not failed and not noop['changed']


def test_release_with_a_wrong_token_fails_and_force_works(run_module, tmp_path):
    run_module(bluegreen_lock, args(tmp_path))
    failed, result = run_module(bluegreen_lock, args(tmp_path, state='absent', token='wrong'))
    assert failed and result['msg'].startswith('cannot release: service qa is locked by')
    assert os.path.exists(str(tmp_path / 'qa' / 'lock'))
    failed, result = run_module(bluegreen_lock, args(tmp_path, state='absent', force=True))
    assert not failed and result['changed'] and result['holder']['operation'] == 'deploy'
    assert not os.path.exists(str(tmp_path / 'qa' / 'lock'))


def test_check_mode_predicts_without_writing(run_module, tmp_path):
    failed, result = run_module(bluegreen_lock, args(tmp_path), check_mode=True)
    assert not failed and result['changed']
    assert not os.path.exists(str(tmp_path / 'qa'))


def test_force_takes_an_unexpired_lease(run_module, tmp_path):
    dummy, first = run_module(bluegreen_lock, args(tmp_path))
    failed, second = run_module(bluegreen_lock, args(tmp_path, force=True, operation='unlock'))
    assert not failed and second['changed'] and second['token'] != first['token']


def test_bad_ttl_and_service_are_named(run_module, tmp_path):
    failed, result = run_module(bluegreen_lock, args(tmp_path, ttl=0))
    assert failed and result['msg'] == 'ttl must be at least 1 second, got 0'
    failed, result = run_module(bluegreen_lock, args(tmp_path, service='../x'))
    assert failed and 'invalid service name' in result['msg']


def test_takeover_of_an_expired_lease_is_returned_and_audited(run_module, tmp_path):
    dummy, first = run_module(bluegreen_lock, args(tmp_path, ttl=1))
    time.sleep(1.1)
    failed, second = run_module(bluegreen_lock, args(tmp_path, operation='rollback', operator='alice'))
    assert not failed and second['changed']
    assert second['took_over']['since'] == first['holder']['since']
    assert second['took_over']['reason'].startswith('its lease expired at ')
    assert 'took over the lock of %s' % first['holder']['holder'] in json.dumps(second.get('warnings'))
    with open(str(tmp_path / 'qa' / 'audit.log')) as handle:
        record = json.loads(handle.read().splitlines()[-1])
    assert (record['action'], record['operator'], record['lock']['operation']) == ('takeover', 'alice', 'deploy')
    failed, removed = run_module(bluegreen_lock, args(tmp_path, state='absent', force=True, operator='bob'))
    assert not failed and removed['changed']
    with open(str(tmp_path / 'qa' / 'audit.log')) as handle:
        record = json.loads(handle.read().splitlines()[-1])
    assert (record['action'], record['operator'], record['lock']['operation']) == ('unlock', 'bob', 'rollback')
