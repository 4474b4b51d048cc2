# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bluegreen_audit: retire and wake events join the hash-chained audit log and reach the webhook."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible_collections.llmops.bluegreen.plugins.module_utils._notify import payload
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import append_audit
from ansible_collections.llmops.bluegreen.plugins.modules import audit_verify, bluegreen_audit

from test_switch_notify import Receiver


def lines(tmp_path):
    return [json.loads(line) for line in (tmp_path / 'qa' / 'audit.log').read_text().splitlines()]


def test_appends_a_chained_record_after_a_switch_line(run_module, tmp_path):
    (tmp_path / 'qa').mkdir()
    append_audit(str(tmp_path / 'qa' / 'audit.log'), {'action': 'switch', 'to': 'green', 'result': 'ok'})
    failed, result = run_module(bluegreen_audit, {
        'state_dir': str(tmp_path), 'action': 'retire_cold', 'color': 'blue', 'operator': 'awx:ops job 7',
        'detail': {'stopped': ['qa-llm-blue']}, 'reason': 'grace period over'})
    assert not failed and result['changed']
    written = lines(tmp_path)
    assert len(written) == 2
    assert written[1] == result['audit']
    assert {k: written[1][k] for k in ('action', 'color', 'operator', 'result', 'detail', 'reason', 'service')} == {
        'action': 'retire_cold', 'color': 'blue', 'operator': 'awx:ops job 7', 'result': 'ok',
        'detail': {'stopped': ['qa-llm-blue']}, 'reason': 'grace period over', 'service': 'qa'}
    assert os.stat(str(tmp_path / 'qa' / 'audit.log')).st_mode & 0o777 == 0o600
    failed, verified = run_module(audit_verify, {'state_dir': str(tmp_path)})
    assert not failed and verified['ok'] and verified['chained'] == 2


def test_check_mode_writes_nothing(run_module, tmp_path):
    (tmp_path / 'qa').mkdir()
    failed, result = run_module(bluegreen_audit, {'state_dir': str(tmp_path), 'action': 'wake', 'color': 'green'},
                                check_mode=True)
    assert not failed and result['changed'] and result['audit']['action'] == 'wake'
    assert not (tmp_path / 'qa' / 'audit.log').exists()


def test_an_unwritable_log_fails_naming_it_and_the_fix(run_module, tmp_path):
    (tmp_path / 'qa' / 'audit.log').mkdir(parents=True)  # a directory where the log should be
    failed, result = run_module(bluegreen_audit, {'state_dir': str(tmp_path), 'action': 'retire_stop', 'color': 'blue'})
    assert failed
    assert str(tmp_path / 'qa' / 'audit.log') in result['msg'] and 'fix the state directory' in result['msg']


def test_the_webhook_gets_the_record_as_written(run_module, tmp_path):
    (tmp_path / 'qa').mkdir()
    receiver = Receiver()
    try:
        failed, result = run_module(bluegreen_audit, {
            'state_dir': str(tmp_path), 'action': 'retire_stop', 'color': 'blue', 'notify_url': receiver.url})
    finally:
        receiver.close()
    assert not failed
    (content_type, body), = receiver.bodies
    assert content_type == 'application/json'
    assert body['event'] == 'retire_stop' and body['failed'] is False
    assert body['prev'] == result['audit']['prev'] == lines(tmp_path)[0]['prev']


def test_a_failed_event_is_flagged_for_the_receiver():
    record = bluegreen_audit.event_record({'service': 'qa', 'operator': 'me', 'action': 'wake', 'color': 'blue',
                                           'result': 'failed: not ready in 600 s', 'detail': None, 'reason': None},
                                          '2026-12-02T00:00:00Z')
    assert payload(record)['failed'] is True and 'reason' not in record and record['detail'] == {}
