# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lease lock of a service (docs/contracts.md "State": lock)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import multiprocessing
import os
import socket
import time

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._lock import (
    LockError,
    acquire,
    check_free,
    check_token,
    is_expired,
    read_lock,
    release,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import current_user


@pytest.fixture
def lock_path(tmp_path):
    return str(tmp_path / 'lock')


def test_acquire_writes_the_contract_fields(lock_path):
    changed, lock = acquire(lock_path, 'qa', 'deploy', ttl=600, now=1000000000)
    assert changed
    with open(lock_path) as handle:
        on_disk = json.load(handle)
    assert on_disk == lock
    assert set(lock) == {'token', 'holder', 'pid', 'operation', 'since', 'expires'}
    assert lock['holder'] == '%s@%s' % (current_user(), socket.gethostname())
    assert lock['pid'] == os.getpid()
    assert lock['operation'] == 'deploy'
    assert lock['since'] == '2001-09-09T01:46:40Z'
    assert lock['expires'] == '2001-09-09T01:56:40Z'
    assert [name for name in os.listdir(os.path.dirname(lock_path)) if name != 'lock'] == []


def test_second_caller_fails_at_once_naming_the_holder(lock_path):
    dummy, lock = acquire(lock_path, 'qa', 'deploy')
    started = time.time()
    with pytest.raises(LockError) as exc:
        acquire(lock_path, 'qa', 'rollback')
    assert time.time() - started < 1
    message = str(exc.value)
    assert message.startswith('service qa is locked by %s (operation deploy, pid %d) since %s'
                              % (lock['holder'], lock['pid'], lock['since']))
    assert 'bluegreen_lock state=absent force=true' in message
    assert exc.value.holder['token'] == lock['token']
    assert read_lock(lock_path) == lock


def test_expired_lease_is_taken_over(lock_path):
    dummy, old = acquire(lock_path, 'qa', 'deploy', ttl=10, now=1000)
    assert is_expired(old, now=1010) and not is_expired(old, now=1009)
    with pytest.raises(LockError):
        acquire(lock_path, 'qa', 'switch', now=1009)
    changed, new = acquire(lock_path, 'qa', 'switch', now=1010)
    assert changed and new['token'] != old['token']
    assert read_lock(lock_path)['operation'] == 'switch'


def test_token_re_enters_and_renews(lock_path):
    dummy, lock = acquire(lock_path, 'qa', 'deploy', ttl=60, now=1000)
    changed, again = acquire(lock_path, 'qa', 'switch', ttl=60, token=lock['token'], now=1050)
    assert not changed
    assert again['token'] == lock['token'] and again['operation'] == 'deploy'
    assert again['expires'] == '1970-01-01T00:18:30Z'
    assert read_lock(lock_path) == again


def test_token_of_a_vanished_lease_is_refused(lock_path):
    with pytest.raises(LockError) as exc:
        acquire(lock_path, 'qa', 'deploy', token='feedface')
    assert 'no lock is held' in str(exc.value)
    assert read_lock(lock_path) is None


def test_release_needs_the_token_or_force(lock_path):
    dummy, lock = acquire(lock_path, 'qa', 'deploy')
    with pytest.raises(LockError):
        release(lock_path, 'qa')
    with pytest.raises(LockError):
        release(lock_path, 'qa', token='wrong')
    assert read_lock(lock_path) == lock
    assert release(lock_path, 'qa', token=lock['token']) == (True, lock)
    assert read_lock(lock_path) is None
    assert release(lock_path, 'qa', token=lock['token']) == (False, None)
    acquire(lock_path, 'qa', 'deploy')
    changed, dummy = release(lock_path, 'qa', force=True)
    assert changed and read_lock(lock_path) is None


def test_check_mode_writes_nothing(lock_path):
    changed, lock = acquire(lock_path, 'qa', 'deploy', check_mode=True)
    assert changed and lock['operation'] == 'deploy'
    assert not os.path.exists(lock_path)
    dummy, real = acquire(lock_path, 'qa', 'deploy')
    assert release(lock_path, 'qa', token=real['token'], check_mode=True) == (True, real)
    assert read_lock(lock_path) == real


def test_check_token_and_check_free(lock_path):
    assert check_free(lock_path, 'qa') is None
    dummy, lock = acquire(lock_path, 'qa', 'deploy')
    assert check_token(lock_path, 'qa', lock['token']) == lock
    with pytest.raises(LockError) as exc:
        check_token(lock_path, 'qa', 'other')
    assert 'does not match' in str(exc.value)
    with pytest.raises(LockError):
        check_free(lock_path, 'qa')


def test_damaged_lock_is_held_until_forced(lock_path):
    with open(lock_path, 'w') as handle:
        handle.write('garbage')
    with pytest.raises(LockError) as exc:
        acquire(lock_path, 'qa', 'deploy')
    assert 'locked by unknown' in str(exc.value)
    assert release(lock_path, 'qa', force=True)[0]


def _contend(path, barrier, results):
    barrier.wait()
    try:
        acquire(path, 'qa', 'deploy')
        results.put('won')
    except LockError:
        results.put('lost')


def test_racing_callers_exactly_one_wins(lock_path):
    # An expired lease makes every racer try to break it: only one may succeed.
    acquire(lock_path, 'qa', 'deploy', ttl=1, now=0)
    racers = 8
    barrier = multiprocessing.Barrier(racers)
    results = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_contend, args=(lock_path, barrier, results)) for dummy in range(racers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    outcomes = sorted(results.get(timeout=5) for dummy in range(racers))
    assert outcomes == ['lost'] * (racers - 1) + ['won']
