# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lease lock of a service (docs/contracts-state.md "State": lock)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._lock import (
    Lease,
    LockError,
    abandoned,
    acquire,
    check_free,
    check_token,
    is_expired,
    read_lock,
    release,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._procs import play_pid, start_ticks
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
    assert set(lock) == {'token', 'holder', 'pid', 'pid_of', 'pid_start', 'operation', 'since', 'expires'}
    assert lock['holder'] == '%s@%s' % (current_user(), socket.gethostname())
    if play_pid() is None:  # pytest not started by a play: this process, for information only
        assert (lock['pid'], lock['pid_of'], lock['pid_start']) == (os.getpid(), None, None)
    else:
        assert (lock['pid'], lock['pid_of'], lock['pid_start']) == (play_pid(), 'play', start_ticks(play_pid()))
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


# -- abandoned leases: takeover and audit -------------------------------------------

def audit_lines(lock_path):
    path = os.path.join(os.path.dirname(lock_path), 'audit.log')
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_abandoned_reasons():
    me = socket.gethostname()
    live = {'holder': 'root@' + me, 'pid': os.getpid(), 'pid_of': 'play', 'pid_start': start_ticks(os.getpid()),
            'expires': '2999-01-01T00:00:00Z'}
    assert abandoned(live) is None
    gone = dict(live, pid=dead_pid(), pid_start=1)
    assert abandoned(gone) == 'the ansible-playbook process %d that held it is gone' % gone['pid']
    assert abandoned(dict(gone, pid_of='task')) == 'the module process %d that held it is gone' % gone['pid']
    # A reused pid: the process runs but started at another time.
    assert abandoned(dict(live, pid_start=live['pid_start'] - 1)).endswith('that held it is gone')
    # Another host's pid, or a pid for information only, cannot be checked here.
    assert abandoned(dict(gone, holder='root@elsewhere')) is None
    assert abandoned(dict(gone, pid_of=None)) is None
    assert abandoned(dict(live, expires='2000-01-01T00:00:00Z')) == 'its lease expired at 2000-01-01T00:00:00Z'
    # Exited but not reaped by its parent (a zombie): gone too.
    zombie = subprocess.Popen([sys.executable, '-c', 'pass'])
    deadline = time.time() + 10
    while start_ticks(zombie.pid) is not None and time.time() < deadline:
        time.sleep(0.05)
    assert os.path.exists('/proc/%d' % zombie.pid)
    assert abandoned(dict(live, pid=zombie.pid, pid_start=None)).endswith('that held it is gone')
    zombie.wait()


_HOLD = """
import sys, time
sys.path[:0] = %r
from ansible_collections.llmops.bluegreen.plugins.module_utils._lock import acquire
acquire(sys.argv[1], 'qa', 'deploy', ttl=3600, pid_of='task')
print('locked', flush=True)
time.sleep(600)
"""


def test_a_lock_of_a_killed_process_is_taken_over_and_audited(lock_path):
    proc = subprocess.Popen([sys.executable, '-c', _HOLD % sys.path, lock_path], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b'locked\n'
        old = read_lock(lock_path)
        assert (old['pid'], old['pid_of']) == (proc.pid, 'task')
        with pytest.raises(LockError):  # alive: held
            acquire(lock_path, 'qa', 'switch')
        with pytest.raises(LockError):
            check_free(lock_path, 'qa')
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert check_free(lock_path, 'qa') == old  # check mode sees it as free
    changed, new = acquire(lock_path, 'qa', 'switch', operator='alice')
    assert changed and new['token'] != old['token']
    assert new['took_over']['pid'] == proc.pid and 'token' not in new['took_over']
    assert new['took_over']['reason'] == 'the module process %d that held it is gone' % proc.pid
    (record,) = audit_lines(lock_path)
    assert (record['action'], record['operator'], record['result']) == ('takeover', 'alice', 'ok')
    assert record['lock']['pid'] == proc.pid and record['lock']['operation'] == 'deploy'
    assert 'token' not in record['lock'] and record['holder']['operation'] == 'switch'
    assert record['detail'].startswith('took over the lock of %s (operation deploy, pid %d' % (old['holder'], proc.pid))


def test_expired_takeover_and_forced_unlock_are_audited_own_release_is_not(lock_path):
    acquire(lock_path, 'qa', 'deploy', ttl=1, now=0)
    changed, lock = acquire(lock_path, 'qa', 'switch')
    assert changed and audit_lines(lock_path)[-1]['reason'] == 'its lease expired at 1970-01-01T00:00:01Z'
    release(lock_path, 'qa', token=lock['token'])
    assert len(audit_lines(lock_path)) == 1
    acquire(lock_path, 'qa', 'deploy')
    release(lock_path, 'qa', force=True, operator='bob')
    record = audit_lines(lock_path)[-1]
    assert (record['action'], record['operator'], record['lock']['operation']) == ('unlock', 'bob', 'deploy')
    assert record['reason'].startswith('forced by bob')
    dummy, lock = acquire(lock_path, 'qa', 'deploy')
    acquire(lock_path, 'qa', 'maintenance', force=True, operator='carol')
    record = audit_lines(lock_path)[-1]
    assert (record['action'], record['reason']) == ('takeover', 'forced by carol')
    assert [r["action"] for r in audit_lines(lock_path)] == ["takeover", "unlock", "takeover"]


def test_check_mode_takeover_writes_nothing(lock_path):
    acquire(lock_path, 'qa', 'deploy', ttl=1, now=0)
    before = read_lock(lock_path)
    changed, lock = acquire(lock_path, 'qa', 'switch', check_mode=True)
    assert changed and lock['took_over']['operation'] == 'deploy'
    assert read_lock(lock_path) == before and audit_lines(lock_path) == []


# A stand-in for ansible-playbook: the main process forks a worker (same command line), the
# worker runs a shell, the shell runs a python "module" that looks for the play's process.
_PLAY = """
import os, subprocess, sys
child = os.fork()
if child == 0:
    code = "import sys; sys.path[:0] = %r; from ansible_collections.llmops.bluegreen.plugins.module_utils._lock " \
           "import play_pid; print(play_pid())"
    out = subprocess.check_output(['/bin/sh', '-c', '"$0" -c "$1"', sys.executable, code])
    sys.stdout.write('%%d %%d %%s' %% (os.getppid(), os.getpid(), out.decode()))
    sys.stdout.flush()
    os._exit(0)
os.waitpid(child, 0)
"""


def test_play_pid_is_the_playbook_main_process_not_its_worker(tmp_path):
    script = tmp_path / 'ansible-playbook'
    script.write_text(_PLAY % sys.path)
    out = subprocess.check_output([sys.executable, str(script)]).decode().split()
    main, worker, found = int(out[0]), int(out[1]), int(out[2])
    assert found == main and found != worker
    assert play_pid() is None or play_pid() != os.getpid()


def test_lease_of_a_module_is_its_own_process_and_a_token_reenters(tmp_path):
    lease = Lease(str(tmp_path / 'qa'), 'qa', 'reconcile', ttl=60)
    lock = lease.take()
    assert (lock['pid'], lock['pid_of'], lock['pid_start']) == (os.getpid(), 'task', start_ticks(os.getpid()))
    assert lease.drop() is None and read_lock(lease.path) is None
    dummy, held = acquire(lease.path, 'qa', 'deploy')
    assert Lease(lease.directory, 'qa', 'switch', token=held['token']).take() == held
    with pytest.raises(LockError, match='locked by'):
        Lease(lease.directory, 'qa', 'switch', check_mode=True).take()
