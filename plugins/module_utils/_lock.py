# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Lease lock of a service (docs/contracts-state.md "State": ``<state dir>/<service>/lock``).

The lock file holds JSON ``{token, holder, pid, pid_of, pid_start, operation,
since, expires}``. It is created atomically and exclusively: the content is
written and fsynced to a temporary file which is then hard-linked to ``lock``
(``link`` fails with EEXIST like ``O_EXCL``), so nobody ever reads a half-written
lock. Every acquire/release holds ``flock`` on the service directory, so two
callers cannot both break the same abandoned lease.

A lease is abandoned, and taken over by the next caller (audited), when it
expired, or when it was taken on this host and the process it names is gone;
``pid_of`` says which process ``pid`` is (docs/locking.md).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import errno
import fcntl
import json
import os
import socket
import tempfile
import time
import uuid

from ansible_collections.llmops.bluegreen.plugins.module_utils._procs import alive, play_pid, start_ticks
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import (
    AUDIT_FILE, LOCK_FILE, StateError, append_audit, current_user, ensure_dir)

# The options of the modules that run under a lease (doc fragment llmops.bluegreen.attributes.lease).
LEASE_ARGS = dict(
    lock_token=dict(type='str', no_log=False),
    operator=dict(type='str'),
)

UNLOCK_HINT = ('wait for it to finish; if its play died on this host the next run takes the lock over, '
               'otherwise release it with playbooks/unlock.yml (or llmops.bluegreen.bluegreen_lock state=absent '
               'force=true)')


class LockError(Exception):
    """The lock is held by someone else, or a token does not match."""

    def __init__(self, msg, holder=None):
        super(LockError, self).__init__(msg)
        self.holder = holder


def _iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def _epoch(iso):
    try:
        return calendar.timegm(time.strptime(iso, '%Y-%m-%dT%H:%M:%SZ'))
    except (TypeError, ValueError):
        return None


def is_expired(lock, now=None):
    """True when the lease's ``expires`` lies in the past (an unreadable time never expires)."""
    expires = _epoch(lock.get('expires'))
    return expires is not None and (now if now is not None else time.time()) >= expires


def read_lock(path):
    """The lock dict or None when the service is not locked."""
    try:
        with open(path, 'r') as handle:
            text = handle.read()
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise StateError('cannot read lock %s: %s' % (path, exc))
    try:
        lock = json.loads(text)
        if not isinstance(lock, dict):
            raise ValueError('not an object')
    except ValueError:
        # Foreign or damaged: still a lock, but one only force can remove.
        lock = {'token': None, 'holder': 'unknown', 'pid': None, 'operation': 'unknown',
                'since': None, 'expires': None, 'damaged': text[:200]}
    return lock


def describe(service, lock):
    """The message a second caller gets."""
    return ('service %s is locked by %s (operation %s, pid %s) since %s, lease expires %s; %s'
            % (service, lock.get('holder'), lock.get('operation'), lock.get('pid'),
               lock.get('since'), lock.get('expires'), UNLOCK_HINT))


class _Guard(object):
    """flock on the service directory: serializes lock changes on this host.

    Check mode only reads, so it takes no guard (the directory may not even exist).
    """

    def __init__(self, directory, active=True):
        self.directory = directory
        self.active = active
        self.fd = None

    def __enter__(self):
        if self.active:
            self.fd = os.open(self.directory, os.O_RDONLY)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)


def _write_temp(path, lock):
    """A fully written, fsynced temporary lock file beside ``path``; returns its name."""
    fd, tmp = tempfile.mkstemp(prefix='.lock.', suffix='.tmp', dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, 'w') as handle:
            json.dump(lock, handle, sort_keys=True)
            handle.write('\n')
            handle.flush()
            os.fchmod(handle.fileno(), 0o644)
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _create(path, lock):
    """Atomic exclusive create of a fully written lock file (link fails when one exists)."""
    tmp = _write_temp(path, lock)
    try:
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


def _replace(path, lock):
    """Rewrite a lock we own (lease renewal)."""
    tmp = _write_temp(path, lock)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def new_lock(operation, ttl, now=None, pid_of='play'):
    """A fresh lease held by this user, host and process.

    ``pid_of='play'``: the pid recorded is the play's ansible-playbook process when it runs
    on this host (the lease is abandoned once it is gone), else this process's pid, for
    information only. ``pid_of='task'``: this process holds the lease for its own duration.
    """
    now = time.time() if now is None else now
    pid = play_pid() if pid_of == 'play' else None
    if pid is None:
        pid, pid_of = os.getpid(), ('task' if pid_of == 'task' else None)
    return {
        'token': uuid.uuid4().hex,
        'holder': '%s@%s' % (current_user(), socket.gethostname()),
        'pid': pid,
        'pid_of': pid_of,
        'pid_start': start_ticks(pid) if pid_of else None,
        'operation': operation,
        'since': _iso(now),
        'expires': _iso(now + ttl),
    }


def abandoned(lock, now=None):
    """Why ``lock`` may be taken over (its lease expired, or its process on this host is gone), or None."""
    if is_expired(lock, now):
        return 'its lease expired at %s' % lock.get('expires')
    host = str(lock.get('holder') or '').rpartition('@')[2]
    pid = lock.get('pid')
    if lock.get('pid_of') not in ('play', 'task') or host != socket.gethostname() or not isinstance(pid, int):
        return None
    if alive(pid, lock.get('pid_start')):
        return None
    what = 'the ansible-playbook process' if lock['pid_of'] == 'play' else 'the module process'
    return '%s %d that held it is gone' % (what, pid)


def public(lock):
    """A lock without its token (the holder's handle), for audit lines and messages."""
    return dict((key, value) for key, value in (lock or {}).items() if key != 'token')


def _audit(path, service, action, old, reason, operator, new=None, now=None):
    record = {
        'time': _iso(time.time() if now is None else now), 'service': service,
        'operator': operator or current_user(), 'action': action, 'from': None, 'to': None,
        'lock': public(old), 'reason': reason, 'result': 'ok',
        'detail': '%s the lock of %s (operation %s, pid %s, since %s): %s'
                  % ('took over' if action == 'takeover' else 'removed', old.get('holder'), old.get('operation'),
                     old.get('pid'), old.get('since'), reason),
    }
    if new:
        record['holder'] = dict((key, new.get(key)) for key in ('holder', 'pid', 'pid_of', 'operation'))
    append_audit(os.path.join(os.path.dirname(path), AUDIT_FILE), record)
    return record


def acquire(path, service, operation, ttl=3600, token=None, force=False, check_mode=False, now=None,
            pid_of='play', operator=None):
    """Take the lease; returns ``(changed, lock)``.

    - free: a new lease (changed);
    - held with ``token``: re-entry, the lease is renewed (not changed);
    - held by an abandoned lease (see ``abandoned``), or with ``force``: taken over; the new
      lock names the old one under ``took_over`` and an audit line ``takeover`` is appended;
    - held by another live lease: LockError naming holder, operation and since.
    In check mode nothing is written and the returned lock is what would be written.
    """
    now = time.time() if now is None else now
    with _Guard(os.path.dirname(path), active=not check_mode):
        current = read_lock(path)
        if current is not None and token and current.get('token') == token:
            renewed = dict(current, expires=_iso(now + ttl))
            if not check_mode:
                _replace(path, renewed)
            return False, renewed
        reason = None
        if current is not None:
            reason = 'forced by %s' % (operator or current_user()) if force else abandoned(current, now)
            if reason is None:
                raise LockError(describe(service, current), holder=current)
        if token and current is None:
            # The caller thinks it holds a lease that is gone (released by force):
            # taking a new one silently could hide that someone else intervened.
            raise LockError('lock token %s is not the lock of service %s (no lock is held); '
                            'acquire a new lock without token' % (token, service))
        lock = new_lock(operation, ttl, now, pid_of)
        if current is not None:
            lock['took_over'] = dict(public(current), reason=reason)
        if not check_mode:
            if current is not None:
                _audit(path, service, 'takeover', current, reason, operator, lock, now)
                os.unlink(path)
            _create(path, lock)
        return True, lock


def check_token(path, service, token):
    """Fail unless the current lock carries ``token`` (a caller re-entering its lease)."""
    current = read_lock(path)
    if current is None:
        raise LockError('service %s is not locked, but lock token %s was given; the lease was '
                        'released or broken meanwhile' % (service, token))
    if current.get('token') != token:
        raise LockError('lock token %s does not match: %s' % (token, describe(service, current)),
                        holder=current)
    return current


def check_free(path, service, now=None):
    """Fail if another live lease is held (check mode: an abandoned one would be taken over)."""
    current = read_lock(path)
    if current is not None and abandoned(current, now) is None:
        raise LockError(describe(service, current), holder=current)
    return current


def release(path, service, token=None, force=False, check_mode=False, operator=None):
    """Remove the lease; returns ``(changed, removed_lock)``.

    Without ``force`` only the holder of ``token`` may release; releasing a free
    lock is a no-op. Removing another holder's lease with ``force`` is audited (``unlock``).
    """
    with _Guard(os.path.dirname(path), active=not check_mode):
        current = read_lock(path)
        if current is None:
            return False, None
        own = bool(token) and current.get('token') == token
        if not force and not own:
            raise LockError('cannot release: %s' % describe(service, current), holder=current)
        if not check_mode:
            if not own:
                reason = abandoned(current) or 'forced while the holder may still run'
                _audit(path, service, 'unlock', current, 'forced by %s; %s' % (operator or current_user(), reason),
                       operator)
            os.unlink(path)
        return True, current


class Lease(object):
    """The lease a module runs under: the caller's (re-entered with its token) or its own.

    Its own lease is held by the module process (``pid_of: task``) with ``ttl`` seconds;
    in check mode nothing is taken, but a live lease of someone else still fails.
    """

    def __init__(self, directory, service, operation, token=None, ttl=600, check_mode=False, operator=None):
        self.directory = directory
        self.path = os.path.join(directory, LOCK_FILE)
        self.service = service
        self.operation = operation
        self.token = token
        self.ttl = ttl
        self.check_mode = check_mode
        self.operator = operator
        self.own = None

    def take(self):
        """Returns the lock the module runs under (None in check mode without a token)."""
        if self.token:
            return check_token(self.path, self.service, self.token)
        if self.check_mode:
            check_free(self.path, self.service)
            return None
        ensure_dir(self.directory)
        dummy, self.own = acquire(self.path, self.service, self.operation, ttl=self.ttl, pid_of='task',
                                  operator=self.operator)
        return self.own

    def drop(self):
        """Release the module's own lease (a caller's lease stays held); returns an error text or None."""
        if not self.own:
            return None
        token, self.own = self.own['token'], None
        try:
            release(self.path, self.service, token=token)
        except (LockError, StateError, OSError) as exc:
            return 'could not release the lock: %s' % exc
        return None
