# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""state.json and audit.log: atomic replacement, durable appends, clear errors."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import multiprocessing
import os
import signal
import time

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils import _state
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import (
    StateError,
    append_audit,
    atomic_write,
    read_audit,
    read_state,
    service_dir,
    write_state,
)

OLD = {'schema': 1, 'service': 'qa', 'active': 'blue', 'serial': 1}
NEW = {'schema': 1, 'service': 'qa', 'active': 'green', 'serial': 2, 'pad': 'x' * 200000}


def temp_files(directory):
    return [name for name in os.listdir(str(directory)) if name.endswith('.tmp')]


def test_write_state_replaces_whole_file_with_mode(tmp_path):
    path = str(tmp_path / 'state.json')
    write_state(path, OLD)
    write_state(path, NEW)
    assert read_state(path) == NEW
    assert oct(os.stat(path).st_mode & 0o777) == '0o644'
    assert temp_files(tmp_path) == []


def test_failed_rename_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    path = str(tmp_path / 'state.json')
    write_state(path, OLD)

    def broken_replace(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(_state.os, 'replace', broken_replace)
    with pytest.raises(OSError):
        write_state(path, NEW)
    monkeypatch.undo()
    assert read_state(path) == OLD
    assert temp_files(tmp_path) == []


def _die_while_writing(path, started):
    """Child: write a large state but get stuck in fsync, where the parent kills it."""
    def slow_fsync(fd):
        started.set()
        time.sleep(60)

    _state.os.fsync = slow_fsync
    write_state(path, NEW)


def test_writer_killed_mid_write_leaves_old_state(tmp_path):
    path = str(tmp_path / 'state.json')
    write_state(path, OLD)
    started = multiprocessing.Event()
    child = multiprocessing.Process(target=_die_while_writing, args=(path, started))
    child.start()
    try:
        assert started.wait(20), 'child never reached fsync'
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.join(20)
    assert child.exitcode == -signal.SIGKILL
    # The half-made temp file may remain, but state.json is the old, complete state.
    assert read_state(path) == OLD
    write_state(path, NEW)
    assert read_state(path) == NEW


def test_missing_state_is_none(tmp_path):
    assert read_state(str(tmp_path / 'state.json')) is None


def test_corrupt_state_names_file_and_fix(tmp_path):
    path = tmp_path / 'state.json'
    path.write_text('{"schema": 1, "active": ')
    with pytest.raises(StateError) as exc:
        read_state(str(path))
    assert str(path) in str(exc.value)
    assert 'restore it from a backup' in str(exc.value)


def test_unknown_schema_is_refused(tmp_path):
    path = tmp_path / 'state.json'
    path.write_text('{"schema": 7}')
    with pytest.raises(StateError) as exc:
        read_state(str(path))
    assert 'schema 7' in str(exc.value)


def test_atomic_write_text_and_bytes(tmp_path):
    path = str(tmp_path / 'f.conf')
    atomic_write(path, u'caf\u00e9\n')
    with open(path, 'rb') as handle:
        assert handle.read() == u'caf\u00e9\n'.encode('utf-8')
    atomic_write(path, b'\x00raw', mode=0o600)
    with open(path, 'rb') as handle:
        assert handle.read() == b'\x00raw'
    assert oct(os.stat(path).st_mode & 0o777) == '0o600'


def test_audit_appends_lines_and_reads_the_tail(tmp_path):
    path = str(tmp_path / 'audit.log')
    assert read_audit(path) == []
    for serial in range(1, 2001):
        append_audit(path, {'serial': serial, 'result': 'ok', 'note': 'n' * 100})
    with open(path) as handle:
        lines = handle.read().splitlines()
    assert len(lines) == 2000
    assert json.loads(lines[0])['serial'] == 1
    tail = read_audit(path, 3)
    assert [record['serial'] for record in tail] == [1998, 1999, 2000]
    # More lines than one read block (64 KiB) holds.
    assert [record['serial'] for record in read_audit(path, 1500)] == list(range(501, 2001))
    assert read_audit(path, 0) == []


def test_unparsable_audit_line_is_kept_as_text(tmp_path):
    path = tmp_path / 'audit.log'
    path.write_text('{"serial": 1}\nnot json\n')
    assert read_audit(str(path)) == [{'serial': 1}, {'unparsable': 'not json'}]


@pytest.mark.parametrize('name', ['../etc', 'QA', '', 'a/b', '.hidden'])
def test_service_name_must_be_a_safe_path_component(name):
    with pytest.raises(StateError) as exc:
        service_dir('/var/lib/llmops', name)
    assert 'invalid service name' in str(exc.value)


def test_service_dir():
    assert service_dir('/var/lib/llmops', 'handbook-qa') == '/var/lib/llmops/handbook-qa'
