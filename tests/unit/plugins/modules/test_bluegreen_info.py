# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bluegreen_info: state, lock and audit history, read-only."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.llmops.bluegreen.plugins.module_utils._lock import acquire
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import append_audit, write_state
from ansible_collections.llmops.bluegreen.plugins.modules import bluegreen_info

STATE = {'schema': 1, 'service': 'qa', 'active': 'green', 'previous': 'blue',
         'weights': {'blue': 0, 'green': 100}, 'serial': 2, 'updated_at': '2026-11-23T01:00:00Z',
         'colors': {'blue': {'upstreams': ['qa-qa-blue:8000']}, 'green': {'upstreams': ['qa-qa-green:8000']}}}


def test_before_any_switch(run_module, tmp_path):
    failed, result = run_module(bluegreen_info, {'state_dir': str(tmp_path)})
    assert not failed and not result['changed']
    assert result['state'] is None and result['active'] is None and result['previous'] is None
    assert result['audit'] == [] and result['lock'] is None and result['upstreams_conf'] is None


def test_reads_state_audit_and_lock(run_module, tmp_path):
    directory = tmp_path / 'qa'
    (directory / 'nginx').mkdir(parents=True)
    (directory / 'nginx' / 'upstreams.conf').write_text('# conf\n')
    write_state(str(directory / 'state.json'), STATE)
    for serial in range(1, 6):
        append_audit(str(directory / 'audit.log'), {'serial': serial, 'result': 'ok'})
    dummy, lock = acquire(str(directory / 'lock'), 'qa', 'deploy', ttl=5, now=0)

    failed, result = run_module(bluegreen_info, {'state_dir': str(tmp_path), 'audit_lines': 2}, check_mode=True)
    assert not failed
    assert result['state'] == STATE
    assert (result['active'], result['previous']) == ('green', 'blue')
    assert result['weights'] == {'blue': 0, 'green': 100}
    assert [record['serial'] for record in result['audit']] == [4, 5]
    assert result['lock']['holder'] == lock['holder'] and result['lock']['expired'] is True
    assert result['lock']['abandoned'] == 'its lease expired at 1970-01-01T00:00:05Z'
    assert 'token' not in result['lock']
    assert result['upstreams_conf'] == '# conf\n'


def test_corrupt_state_fails_with_the_path(run_module, tmp_path):
    (tmp_path / 'qa').mkdir()
    (tmp_path / 'qa' / 'state.json').write_text('{')
    failed, result = run_module(bluegreen_info, {'state_dir': str(tmp_path)})
    assert failed and str(tmp_path / 'qa' / 'state.json') in result['msg']
