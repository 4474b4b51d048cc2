# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Lease lock of a service (docs/contracts.md "State": ``<state dir>/<service>/lock``).

The lock file holds JSON ``{token, holder, pid, operation, since, expires}``.
It is created atomically and exclusively: the content is written and fsynced
to a temporary file which is then hard-linked to ``lock`` (``link`` fails with
EEXIST like ``O_EXCL``), so nobody ever reads a half-written lock. A lease past
``expires`` may be taken over. Every acquire/release holds ``flock`` on the
service directory, so two callers cannot both break the same expired lease.
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

from ansible_collections.llmops.bluegreen.plugins.module_utils._state import (
    StateError,
    current_user,
)

UNLOCK_HINT = ('wait for it to finish or, if it died, release it with playbooks/unlock.yml '
               '(or llmops.bluegreen.bluegreen_lock state=absent force=true)')


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


def new_lock(operation, ttl, now=None):
    """A fresh lease held by this user, host and process."""
    now = time.time() if now is None else now
    return {
        'token': uuid.uuid4().hex,
        'holder': '%s@%s' % (current_user(), socket.gethostname()),
        'pid': os.getpid(),
        'operation': operation,
        'since': _iso(now),
        'expires': _iso(now + ttl),
    }


def acquire(path, service, operation, ttl=3600, token=None, force=False, check_mode=False, now=None):
    """Take the lease; returns ``(changed, lock)``.

    - free, or held but expired, or ``force``: a new lease (changed);
    - held with ``token``: re-entry, the lease is renewed (not changed);
    - held by another unexpired lease: LockError naming holder, operation and since.
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
        if current is not None and not force and not is_expired(current, now):
            raise LockError(describe(service, current), holder=current)
        if token and current is None:
            # The caller thinks it holds a lease that is gone (released by force):
            # taking a new one silently could hide that someone else intervened.
            raise LockError('lock token %s is not the lock of service %s (no lock is held); '
                            'acquire a new lock without token' % (token, service))
        lock = new_lock(operation, ttl, now)
        if not check_mode:
            if current is not None:
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
    """Fail if another unexpired lease is held (check mode of a switch)."""
    current = read_lock(path)
    if current is not None and not is_expired(current, now):
        raise LockError(describe(service, current), holder=current)
    return current


def release(path, service, token=None, force=False, check_mode=False):
    """Remove the lease; returns ``(changed, removed_lock)``.

    Without ``force`` only the holder of ``token`` may release; releasing a free
    lock is a no-op.
    """
    with _Guard(os.path.dirname(path), active=not check_mode):
        current = read_lock(path)
        if current is None:
            return False, None
        if not force and (not token or current.get('token') != token):
            raise LockError('cannot release: %s' % describe(service, current), holder=current)
        if not check_mode:
            os.unlink(path)
        return True, current
