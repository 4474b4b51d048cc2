# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions and steps of a switch, without Docker (module_utils/_switch.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from _fakes import Clock
from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import GatewayError
from ansible_collections.llmops.bluegreen.plugins.module_utils._switch import (
    RECORD_KEYS, SwitchFailed, SwitchInputError, apply_config, audit_record, desired_weights, gate, health_problem,
    health_record, new_roles, new_state, unchanged, verify_each, verify_hits)
from ansible_collections.llmops.bluegreen.plugins.module_utils._upstreams import BOOTSTRAP

UP = {'blue': ['b:8000'], 'green': ['g:8000']}
R1, R2 = 'a' * 64, 'b' * 64


def health(which, **changes):
    color = which
    data = {'status': 'ready', 'color': color, 'version': 'v-' + color, 'model': 'm', 'release': R1,
            'kb': {'version': 'kb-' + color, 'checksum': 'sum-' + color}}
    data.update(changes)
    return data


# -- inputs and roles -----------------------------------------------------------

def test_desired_weights():
    assert desired_weights('qa', UP, color='green') == {'blue': 0, 'green': 100}
    assert desired_weights('qa', UP, weights={'blue': '75', 'green': 25}) == {'blue': 75, 'green': 25}
    with pytest.raises(SwitchInputError, match=r'color green has no servers in upstreams; add upstreams.green, '
                                               r'e.g. \["qa-qa-green:8000"\]'):
        desired_weights('qa', {'blue': ['b:1']}, color='green')
    with pytest.raises(SwitchInputError, match="weights.blue must be an integer 0..100, got 'x'"):
        desired_weights('qa', UP, weights={'blue': 'x'})


@pytest.mark.parametrize('state, weights, expected', [
    (None, {'blue': 100, 'green': 0}, ('blue', None, ['blue'])),
    ({'active': 'blue', 'previous': None}, {'blue': 0, 'green': 100}, ('green', 'blue', ['green'])),
    ({'active': 'green', 'previous': 'blue'}, {'blue': 100, 'green': 0}, ('blue', 'green', ['blue'])),
    # Same color again: previous stays.
    ({'active': 'blue', 'previous': 'green'}, {'blue': 100, 'green': 0}, ('blue', 'green', ['blue'])),
    # Canary: active stays the stable color, the other is introduced.
    ({'active': 'blue', 'previous': 'green'}, {'blue': 95, 'green': 5}, ('blue', 'green', ['green'])),
    # Split without the old active: the heaviest is active.
    (None, {'blue': 30, 'green': 70}, ('green', None, ['blue'])),
])
def test_new_roles(state, weights, expected):
    assert new_roles(state, weights) == expected


# -- health gate --------------------------------------------------------------------

@pytest.mark.parametrize('data, expect, problem, final', [
    (health('green'), {'release': R1, 'kb_checksum': 'sum-green'}, None, False),
    (health('green', color='blue'), None, 'green upstream g:8000 reports color blue; the upstreams mapping is wrong',
     True),
    (health('green', status='loading'), None, 'green (g:8000) is loading, not ready', False),
    (health('green', status='error', error='kb checksum differs'), None,
     'green (g:8000) is error, not ready: kb checksum differs', False),
    (health('green'), {'release': R2}, 'green (g:8000) reports release %s, expected %s' % (R1, R2), True),
    (health('green', release=''), {'release': R2}, 'green (g:8000) reports release None, expected %s' % R2, True),
    (health('green'), {'kb_checksum': 'new'}, 'green (g:8000) reports kb checksum sum-green, expected new', True),
    (health('green'), {'model': 'other', 'version': None}, 'green (g:8000) reports model m, expected other', True),
])
def test_health_problem(data, expect, problem, final):
    assert health_problem('green', 'g:8000', data, expect) == (problem, final)


def test_health_record_takes_release_and_ignores_an_empty_one():
    assert health_record(health('blue')) == {'kb_version': 'kb-blue', 'kb_checksum': 'sum-blue', 'model': 'm',
                                             'version': 'v-blue', 'release': R1}
    assert health_record(health('blue', release=''))['release'] is None
    assert set(health_record({})) == set(RECORD_KEYS)


def test_gate_waits_for_ready_then_fails_naming_the_problem():
    clock = Clock(1000.0)
    answers = {'g:8000': [health('green', status='loading')] * 3 + [health('green')]}
    seen = {}
    gate(lambda server: (answers[server].pop(0), None), UP, {'blue': 0, 'green': 100}, ['green'],
         {'release': R1}, 10, seen, clock, clock.sleep)
    assert seen['green']['g:8000']['status'] == 'ready' and clock.now == 1003.0

    with pytest.raises(SwitchFailed, match=r'not ready after 2 s: green \(g:8000\) unreachable'):
        gate(lambda server: (None, 'unreachable'), UP, {'green': 100}, ['green'], None, 2, {}, clock, clock.sleep)
    started = clock.now
    with pytest.raises(SwitchFailed, match='health gate: green .* reports release'):
        gate(lambda server: (health('green'), None), UP, {'green': 100}, ['green'], {'release': R2}, 60, {},
             clock, clock.sleep)
    assert clock.now == started  # a final problem does not wait


def test_gate_applies_expect_to_the_introduced_color_only():
    seen = {}
    clock = Clock(1000.0)
    gate(lambda server: (health('blue' if server == 'b:8000' else 'green'), None), UP, {'blue': 95, 'green': 5},
         ['green'], {'kb_checksum': 'sum-green'}, 0, seen, clock, clock.sleep)
    assert sorted(seen) == ['blue', 'green']


# -- state record -----------------------------------------------------------------

def test_new_state_records_release_from_health_and_colors_info_wins():
    old = {'serial': 3, 'active': 'blue', 'colors': {
        'blue': {'upstreams': ['old:1'], 'kb_version': 'kb-blue', 'kb_checksum': 'sum-blue', 'model': 'm',
                 'version': 'v-blue', 'release': R1, 'since': 'T0', 'config': 'cfg'}}}
    state = new_state('qa', old, UP, {'blue': 0, 'green': 100}, 'green', 'blue',
                      health={'green': {'g:8000': health('green', release=R2)}},
                      colors_info={'green': {'kb_version': 'recorded', 'since': 'ignored', 'config': 'c2'}}, now='T1')
    assert (state['serial'], state['active'], state['previous'], state['updated_at']) == (4, 'green', 'blue', 'T1')
    green = state['colors']['green']
    assert green['release'] == R2 and green['kb_version'] == 'recorded' and green['config'] == 'c2'
    assert green['since'] == 'T1' and green['upstreams'] == ['g:8000']
    blue = state['colors']['blue']
    assert blue['since'] == 'T0' and blue['config'] == 'cfg' and blue['upstreams'] == ['b:8000']


def test_new_state_since_changes_when_the_release_changes():
    old = {'serial': 1, 'colors': {'blue': dict(health_record(health('blue')), since='T0', upstreams=['b:8000'])}}
    same = new_state('qa', old, {'blue': ['b:8000']}, {'blue': 100}, 'blue', None,
                     health={'blue': {'b:8000': health('blue')}}, now='T1')
    assert same['colors']['blue']['since'] == 'T0'
    other = new_state('qa', old, {'blue': ['b:8000']}, {'blue': 100}, 'blue', None,
                      health={'blue': {'b:8000': health('blue', release=R2)}}, now='T1')
    assert other['colors']['blue']['since'] == 'T1'


def test_unchanged_needs_file_state_and_expected_values():
    state = new_state('qa', None, UP, {'blue': 100, 'green': 0}, 'blue', None,
                      health={'blue': {'b:8000': health('blue')}}, now='T')
    args = (state, 'conf', 'conf', UP, {'blue': 100, 'green': 0}, 'blue', ['blue'])
    assert unchanged(*args, expect={'release': R1})
    assert not unchanged(*args, expect={'release': R2})
    assert not unchanged(state, 'old', 'conf', *args[3:])
    assert not unchanged(None, 'conf', 'conf', *args[3:])
    assert not unchanged(state, 'conf', 'conf', dict(UP, green=['g2:8000']), *args[4:])
    assert not unchanged(state, 'conf', 'conf', UP, {'blue': 50, 'green': 50}, 'blue', ['green'])


def test_audit_record_names_from_to_and_release():
    state = {'active': 'blue', 'colors': {'blue': {'release': R1}}}
    after = {'serial': 2, 'colors': {'blue': {'release': R1}, 'green': {'release': R2}}}
    record = audit_record('qa', 'alice', 'switch', state, after, {'blue': 0, 'green': 100}, ['green'], 'ok', 1.23456, 'T')
    assert (record['from'], record['to'], record['serial'], record['duration_s']) == ('blue', 'green', 2, 1.235)
    assert record['colors']['green']['release'] == R2
    failed = audit_record('qa', 'bob', 'switch', state, None, {'blue': 50, 'green': 50}, ['blue', 'green'],
                          'failed: x', 0, 'T')
    assert failed['to'] == ['blue', 'green'] and 'serial' not in failed
    assert failed['colors'] == {'blue': dict((key, R1 if key == 'release' else None) for key in RECORD_KEYS)}


# -- verification ---------------------------------------------------------------------

def test_verify_hits_counts_consecutive_hits_only():
    clock = Clock(1000.0)
    answers = [(200, 'blue', 'blue', None), (502, 'green', None, None)] + [(200, 'green', 'green', None)] * 5
    first, total = verify_hits(lambda: answers.pop(0), {'green': 100}, 5, 30, clock(), clock, clock.sleep)
    assert not answers and first == 0.04 and total == 0.12


def test_verify_hits_fails_naming_the_last_miss():
    clock = Clock(1000.0)
    with pytest.raises(SwitchFailed) as exc:
        verify_hits(lambda: (200, 'blue', 'blue', None), {'green': 100}, 3, 1, clock(), clock, clock.sleep, 'URL')
    assert str(exc.value) == ('verify: only 0 of 3 consecutive requests through URL reached green within 1 s; '
                              'last miss: HTTP 200, X-QA-Color blue, body color blue')
    # Restoring to the bootstrap: color none answers 503 and still counts.
    verify_hits(lambda: (503, 'none', 'none', None), {'none': 100}, 3, 1, clock(), clock, clock.sleep,
                any_status=True)


def test_verify_each_hints_at_the_operator_key():
    forced = []
    verify_each(lambda color: forced.append(color) or (200, color, color, None), {'blue': 50, 'green': 50})
    assert sorted(forced) == ['blue'] * 3 + ['green'] * 3
    with pytest.raises(SwitchFailed, match='honours X-QA-Color only with an operator key: set verify_api_key'):
        verify_each(lambda color: (200, 'blue', 'blue', None), {'blue': 50, 'green': 50})


# -- apply and restore, with a fake gateway -----------------------------------------

class FakeGateway(object):
    def __init__(self, test_ok=True, reload_error=None):
        self.test_ok = test_ok
        self.reload_error = reload_error
        self.calls = []

    def nginx_test(self):
        self.calls.append('test')
        return self.test_ok, 'nginx: [emerg] host not found'

    def nginx_reload(self):
        self.calls.append('reload')
        if self.reload_error:
            error, self.reload_error = self.reload_error, None  # the restore's reload works
            raise GatewayError(error)


def hits_ok(weights, count, any_status):
    return 0.01, 0.1


def test_apply_writes_backup_and_config_then_reloads(tmp_path):
    conf = tmp_path / 'upstreams.conf'
    conf.write_text('old')
    gateway, seconds = FakeGateway(), {}
    assert apply_config(gateway, str(conf), 'old', 'new', None, {'green': 100}, hits_ok, None, 10, seconds) == (0.01, 0.1)
    assert conf.read_text() == 'new' and (tmp_path / 'upstreams.conf.bak').read_text() == 'old'
    assert gateway.calls == ['test', 'reload'] and set(seconds) == {'reload', 'verify'}


def test_apply_restores_the_file_when_nginx_t_refuses(tmp_path):
    conf = tmp_path / 'upstreams.conf'
    conf.write_text('old')
    gateway = FakeGateway(test_ok=False)
    with pytest.raises(SwitchFailed, match=r'nginx -t rejected the new upstreams.conf \(previous config restored\): '
                                           r'nginx: \[emerg\] host not found'):
        apply_config(gateway, str(conf), 'old', 'new', None, {'green': 100}, hits_ok, None, 10, {})
    assert conf.read_text() == 'old' and gateway.calls == ['test']


def test_apply_restores_bootstrap_and_reloads_when_verification_fails(tmp_path):
    conf = tmp_path / 'upstreams.conf'
    gateway = FakeGateway()

    def hits(weights, count, any_status):
        if not any_status:
            raise SwitchFailed('verify: only 0 of 10')
        return 0, 0

    with pytest.raises(SwitchFailed, match=r'verify: only 0 of 10 \(previous config restored, traffic back on none\)'):
        apply_config(gateway, str(conf), None, 'new', None, {'green': 100}, hits, None, 10, {})
    assert conf.read_text() == BOOTSTRAP and gateway.calls == ['test', 'reload', 'test', 'reload']


def test_apply_reload_failure_restores(tmp_path):
    conf = tmp_path / 'upstreams.conf'
    conf.write_text('old')
    gateway = FakeGateway(reload_error='nginx -s reload failed: no pid')
    state = {'weights': {'blue': 100}}
    with pytest.raises(SwitchFailed, match=r'no pid \(previous config restored, traffic back on blue\)'):
        apply_config(gateway, str(conf), 'old', 'new', state, {'green': 100}, hits_ok, None, 10, {})
    assert conf.read_text() == 'old' and gateway.calls == ['test', 'reload', 'test', 'reload']


def test_split_checks_each_color(tmp_path):
    checked = []
    apply_config(FakeGateway(), str(tmp_path / 'c'), None, 'new', None, {'blue': 50, 'green': 50}, hits_ok,
                 checked.append, 10, {})
    assert checked == [{'blue': 50, 'green': 50}]
