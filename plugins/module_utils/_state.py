# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Blue/green state on the gateway host (docs/contracts-state.md "State").

``<state dir>/<service>/state.json`` is the source of truth: it is only ever
replaced whole (temp file + fsync + rename + fsync of the directory), so a
reader sees the old or the new state, never a partial one. ``audit.log`` is
append-only JSON lines, each written with one ``write`` and fsynced.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import errno
import getpass
import json
import os

from ansible_collections.llmops.bluegreen.plugins.module_utils import _audit
from ansible_collections.llmops.bluegreen.plugins.module_utils._atomic import atomic_write
from ansible_collections.llmops.bluegreen.plugins.module_utils._names import NamesError, check_service

STATE_SCHEMA = 1
STATE_FILE = 'state.json'
AUDIT_FILE = 'audit.log'
LOCK_FILE = 'lock'
NGINX_DIR = 'nginx'
UPSTREAMS_FILE = 'upstreams.conf'
COLORS = ('blue', 'green')
# The options of every module that reads or writes a service's state directory
# (documented by the doc fragment llmops.bluegreen.attributes.service_state).
SERVICE_STATE_ARGS = dict(
    service=dict(type='str', default='qa'),
    state_dir=dict(type='path', default='/var/lib/llmops'),
)


class StateError(Exception):
    """State files cannot be read or written; the message names file and fix."""


def utc_now():
    """ISO 8601 UTC time with a Z suffix, second precision."""
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def current_user():
    """The OS user running the module (falls back to the uid without a passwd entry)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return 'uid%d' % os.getuid()


def service_dir(state_dir, service):
    """``<state_dir>/<service>``; the service name must be a safe path component."""
    try:
        check_service(service)
    except NamesError as exc:
        raise StateError(str(exc))
    return os.path.join(state_dir, service)


def ensure_dir(path, mode=0o755):
    """Create a directory (and parents) if missing."""
    try:
        os.makedirs(path, mode)
    except OSError as exc:
        if exc.errno != errno.EEXIST or not os.path.isdir(path):
            raise StateError('cannot create directory %s: %s' % (path, exc))


def read_text(path):
    """File content as text, or None when the file does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8')
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise StateError('cannot read %s: %s' % (path, exc))


def read_json(path):
    """Parsed JSON of a file, or None when it does not exist."""
    text = read_text(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StateError(
            '%s is not valid JSON (%s); restore it from a backup or remove it to start '
            'from no state' % (path, exc))


def dump_json(data):
    """Canonical, human-readable JSON text used for state.json and diffs."""
    return json.dumps(data, indent=2, sort_keys=True) + '\n'


def read_state(path):
    """The state dict, or None before the first switch."""
    state = read_json(path)
    if state is not None and (not isinstance(state, dict) or state.get('schema') != STATE_SCHEMA):
        raise StateError('%s has an unknown format (schema %r, expected %d)'
                         % (path, state.get('schema') if isinstance(state, dict) else None, STATE_SCHEMA))
    return state


def write_state(path, state):
    """Atomically replace state.json."""
    atomic_write(path, dump_json(state))


def append_audit(path, record):
    """Append one JSON line to the audit log, hash-chained to the line before (module_utils/_audit.py).

    Returns the record as written (with ``prev``)."""
    try:
        return _audit.append(path, record)
    except (IOError, OSError) as exc:
        raise StateError('cannot append to %s: %s' % (path, exc))


def _tail_lines(path, lines, block=65536):
    """The last ``lines`` lines of a file without reading all of it (the log only grows)."""
    try:
        with open(path, 'rb') as handle:
            handle.seek(0, os.SEEK_END)
            end = handle.tell()
            data = b''
            while end > 0 and data.count(b'\n') <= lines:
                start = max(0, end - block)
                handle.seek(start)
                data = handle.read(end - start) + data
                end = start
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise StateError('cannot read %s: %s' % (path, exc))
    return [line for line in data.decode('utf-8', 'replace').splitlines() if line.strip()][-lines:]


def read_audit(path, lines=10):
    """The last ``lines`` audit records, oldest first; unparsable lines are kept as text."""
    if lines <= 0:
        return []
    records = []
    for line in _tail_lines(path, lines):
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append({'unparsable': line})
    return records
