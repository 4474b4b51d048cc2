# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit log's hash chain: written by every append, broken by any edit (module_utils/_audit.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import stat
import threading

from ansible_collections.llmops.bluegreen.plugins.module_utils._audit import GENESIS, line_hash, verify_lines
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import append_audit
from ansible_collections.llmops.bluegreen.plugins.modules import audit_verify


def write(path, count, start=0):
    return [append_audit(str(path), {'action': 'switch', 'serial': start + n}) for n in range(count)]


def lines(path):
    return path.read_text().splitlines()


def test_each_line_names_the_hash_of_the_one_before(tmp_path):
    path = tmp_path / 'audit.log'
    written = write(path, 3)
    text = lines(path)
    assert written[0]['prev'] == GENESIS and json.loads(text[0])['prev'] == GENESIS
    assert [json.loads(line)['prev'] for line in text[1:]] == [line_hash(line) for line in text[:-1]]
    assert verify_lines(text) == {'ok': True, 'lines': 3, 'chained': 3, 'unchained': 0, 'problems': []}
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600


def test_a_changed_line_is_named(tmp_path):
    path = tmp_path / 'audit.log'
    write(path, 4)
    text = lines(path)
    text[1] = text[1].replace('"serial": 1', '"serial": 9')
    result = verify_lines(text)
    assert not result['ok'] and [p['line'] for p in result['problems']] == [3]
    assert 'line 2 or 3 was changed, inserted or removed' in result['problems'][0]['problem']


def test_a_removed_or_inserted_line_breaks_the_chain(tmp_path):
    path = tmp_path / 'audit.log'
    write(path, 4)
    text = lines(path)
    assert [p['line'] for p in verify_lines(text[:1] + text[2:])['problems']] == [2]
    forged = json.dumps({'action': 'switch', 'prev': line_hash(text[0])}, sort_keys=True)
    assert [p['line'] for p in verify_lines(text[:1] + [forged] + text[1:])['problems']] == [3]


def test_a_log_from_before_the_chain_is_continued(tmp_path):
    path = tmp_path / 'audit.log'
    path.write_text('{"action": "switch", "serial": 1}\n{"action": "rollback", "serial": 2}\n')
    os.chmod(str(path), 0o644)
    write(path, 2, start=3)
    result = verify_lines(lines(path))
    assert (result['ok'], result['unchained'], result['chained']) == (True, 2, 2)
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    text = lines(path) + ['{"action": "switch", "serial": 5}']
    assert 'no prev hash after chained lines' in verify_lines(text)['problems'][0]['problem']


def test_concurrent_appends_keep_one_chain(tmp_path):
    path = tmp_path / 'audit.log'
    threads = [threading.Thread(target=write, args=(path, 20, n * 100)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = verify_lines(lines(path))
    assert result['ok'] and result['lines'] == 80, result


def test_the_module_fails_naming_the_line(run_module, tmp_path):
    service_dir = tmp_path / 'qa'
    service_dir.mkdir()
    path = service_dir / 'audit.log'
    failed, result = run_module(audit_verify, {'state_dir': str(tmp_path)})
    assert not failed and result['lines'] == 0 and result['ok']
    write(path, 3)
    failed, result = run_module(audit_verify, {'state_dir': str(tmp_path)})
    assert not failed and result['msg'] == 'audit log intact: 3 lines, 3 chained'
    text = lines(path)
    text[0] = text[0].replace('switch', 'rollback')
    path.write_text('\n'.join(text) + '\n')
    failed, result = run_module(audit_verify, {'state_dir': str(tmp_path)})
    assert failed and 'is not intact: line 2: prev is' in result['msg'] and result['problems'][0]['line'] == 2
    failed, result = run_module(audit_verify, {'state_dir': str(tmp_path), 'fail_on_break': False})
    assert not failed and not result['ok']
