# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bluegreen_switch against a real nginx gateway and two colors (see tests/unit/_docker_fixtures.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import subprocess
import threading
import time

import pytest

from _docker_fixtures import TESTER_KEY
from ansible_collections.llmops.bluegreen.plugins.module_utils._lock import acquire, read_lock
from ansible_collections.llmops.bluegreen.plugins.modules import bluegreen_switch

AUDIT_FIELDS = {'time', 'operator', 'action', 'from', 'to', 'weights', 'colors', 'result', 'duration_s'}


@pytest.fixture
def env(bluegreen_env):
    bluegreen_env.reset()
    return bluegreen_env


def switch(run_module, env, check_mode=False, diff=False, **args):
    return run_module(bluegreen_switch, env.switch_args(**args), check_mode=check_mode, diff=diff)


# -- input errors: no docker needed ------------------------------------------

def base_args(tmp_path, **extra):
    args = {'state_dir': str(tmp_path), 'gateway_container': 'none-gateway',
            'upstreams': {'blue': ['qa-qa-blue:8000']}}
    args.update(extra)
    return args


@pytest.mark.parametrize('extra, message', [
    ({'color': 'green'}, 'color green has no servers in upstreams; add upstreams.green'),
    ({'weights': {'blue': 50, 'green': 40}, 'upstreams': {'blue': ['b:1'], 'green': ['g:1']}},
     'weights must add up to 100, got 90'),
    ({'weights': {'blue': 'lots'}}, "weights.blue must be an integer 0..100, got 'lots'"),
    ({'color': 'blue', 'upstreams': {'blue': ['qa-qa-blue']}}, "'qa-qa-blue' is not host:port"),
    ({'color': 'blue', 'weights': {'blue': 100}}, 'mutually exclusive'),
    ({}, 'one of the following is required: color, weights'),
    ({'color': 'blue', 'verify_count': 0}, 'verify_count must be positive'),
])
def test_bad_input_fails_before_touching_anything(run_module, tmp_path, extra, message):
    failed, result = run_module(bluegreen_switch, base_args(tmp_path, **extra))
    assert failed and message in result['msg']
    assert list(tmp_path.iterdir()) == []


@pytest.mark.docker
def test_check_mode_before_the_first_deploy_warns_and_writes_nothing(run_module, tmp_path):
    """A dry run on a host without the gateway yet (the production example's --check): the switch is
    shown with a warning that names the missing gateway, not a failure; outside check mode it fails."""
    failed, result = run_module(bluegreen_switch, base_args(tmp_path, color='blue'), check_mode=True)
    assert not failed, result
    assert result['changed'] and result['active'] == 'blue'
    assert 'none-gateway does not exist yet' in json.dumps(result), result
    assert not [p for p in tmp_path.rglob('*') if p.is_file()], 'a dry run writes nothing'
    failed, result = run_module(bluegreen_switch, base_args(tmp_path, color='blue'))
    assert failed


# -- against the real gateway --------------------------------------------------


@pytest.mark.docker
def test_first_switch_sends_every_new_request_to_the_target(run_module, env):
    assert env.probe()[0] == 503  # bootstrap: color none
    failed, result = switch(run_module, env, color='blue', operator='alice')
    assert not failed, result['msg']
    assert result['changed'] and result['active'] == 'blue' and result['previous'] is None
    assert env.colors_seen(30) == {'blue': 30}
    assert 0 < result['first_target_seconds'] <= result['all_target_seconds'] < 5
    assert set(result['seconds']) == {'health', 'reload', 'verify', 'total'}

    state = json.loads(env.read('state.json'))
    assert state == result['state']
    assert (state['active'], state['previous'], state['serial']) == ('blue', None, 1)
    assert state['weights'] == {'blue': 100, 'green': 0}
    assert state['colors']['blue']['kb_checksum'] == 'sum-blue'
    assert state['colors']['blue']['model'] == 'model-blue'
    assert state['colors']['blue']['upstreams'] == env.upstreams['blue']

    audit = env.audit()
    assert len(audit) == 1 and AUDIT_FIELDS <= set(audit[0])
    assert audit[0]['operator'] == 'alice' and audit[0]['action'] == 'switch'
    assert (audit[0]['from'], audit[0]['to'], audit[0]['result']) == (None, 'blue', 'ok')
    assert audit[0]['colors']['blue']['kb_checksum'] == 'sum-blue'
    assert read_lock(env.dir + '/lock') is None


@pytest.mark.docker
def test_switch_and_back_records_previous_and_versions(run_module, env):
    switch(run_module, env, color='blue')
    failed, result = switch(run_module, env, color='green',
                            expect={'kb_checksum': 'sum-green', 'model': 'model-green', 'version': '1.0-green'},
                            colors_info={'green': {'kb_version': 'kb-green-recorded'}})
    assert not failed, result['msg']
    assert env.colors_seen(20) == {'green': 20}
    state = json.loads(env.read('state.json'))
    assert (state['active'], state['previous'], state['serial']) == ('green', 'blue', 2)
    assert state['colors']['green']['kb_version'] == 'kb-green-recorded'
    assert state['colors']['blue']['kb_checksum'] == 'sum-blue'
    assert env.read('nginx/upstreams.conf.bak').count('default blue;') == 1
    failed, result = switch(run_module, env, color='blue', action='rollback')
    assert not failed, result['msg']
    assert (result['active'], result['previous']) == ('blue', 'green')
    assert [(r['action'], r['from'], r['to']) for r in env.audit()] == [
        ('switch', None, 'blue'), ('switch', 'blue', 'green'), ('rollback', 'green', 'blue')]


@pytest.mark.docker
def test_same_target_changes_nothing_and_does_not_reload(run_module, env):
    switch(run_module, env, color='green')
    workers = env.worker_pids()
    conf, state, audit = env.read('nginx/upstreams.conf'), env.read('state.json'), env.read('audit.log')
    failed, result = switch(run_module, env, color='green', expect={'kb_checksum': 'sum-green'})
    assert not failed and result['changed'] is False
    assert env.worker_pids() == workers
    assert (env.read('nginx/upstreams.conf'), env.read('state.json'), env.read('audit.log')) == (conf, state, audit)
    _failed, predicted = switch(run_module, env, check_mode=True, color='green')
    assert predicted['changed'] is False


@pytest.mark.docker
def test_check_mode_shows_the_diff_and_writes_nothing(run_module, env):
    switch(run_module, env, color='blue')
    before = dict((name, env.read(name)) for name in ('nginx/upstreams.conf', 'state.json', 'audit.log', 'lock'))
    workers = env.worker_pids()
    failed, result = switch(run_module, env, check_mode=True, diff=True, color='green')
    assert not failed and result['changed'] is True
    conf_diff, state_diff = result['diff']
    assert 'default blue;' in conf_diff['before'] and 'default green;' in conf_diff['after']
    assert json.loads(state_diff['before'])['active'] == 'blue'
    assert json.loads(state_diff['after'])['active'] == 'green'
    assert result['state']['serial'] == 2 and result['previous'] == 'blue'
    assert dict((name, env.read(name)) for name in before) == before
    assert env.worker_pids() == workers
    assert env.colors_seen(10) == {'blue': 10}


@pytest.mark.docker
def test_expected_checksum_mismatch_fails_naming_both_values(run_module, env):
    switch(run_module, env, color='blue')
    conf, state = env.read('nginx/upstreams.conf'), env.read('state.json')
    started = time.time()
    failed, result = switch(run_module, env, color='green', expect={'kb_checksum': 'sum-new'})
    assert failed and time.time() - started < 5  # a ready color with the wrong KB fails at once
    assert ('green (%s) reports kb checksum sum-green, expected sum-new' % env.upstreams['green'][0]) in result['msg']
    assert (env.read('nginx/upstreams.conf'), env.read('state.json')) == (conf, state)
    last = env.audit()[-1]
    assert last['result'].startswith('failed: health gate: green') and last['to'] == 'green'
    assert env.colors_seen(10) == {'blue': 10}
    assert read_lock(env.dir + '/lock') is None


@pytest.mark.docker
def test_gate_waits_for_ready_within_the_timeout(run_module, env):
    env.set_health('green', status='loading')
    timer = threading.Timer(2.0, env.set_health, args=('green',))
    timer.start()
    try:
        failed, result = switch(run_module, env, color='green', health_timeout=20)
    finally:
        timer.cancel()
    assert not failed, result['msg']
    assert 1.5 < result['seconds']['health'] < 10
    env.set_health('green', status='loading')
    failed, result = switch(run_module, env, color='blue', health_timeout=1)
    assert not failed  # blue is ready; only colors that get traffic are gated
    started = time.time()
    failed, result = switch(run_module, env, color='green', health_timeout=2)
    assert failed and 2 <= time.time() - started < 8
    assert 'not ready after 2 s' in result['msg'] and 'is loading, not ready' in result['msg']


@pytest.mark.docker
def test_miswired_upstream_is_refused(run_module, env):
    env.set_health('green', color='blue')
    failed, result = switch(run_module, env, color='green')
    assert failed and 'reports color blue; the upstreams mapping is wrong' in result['msg']


@pytest.mark.docker
def test_nginx_rejecting_the_config_restores_the_backup(run_module, env):
    switch(run_module, env, color='blue', upstreams={'blue': env.upstreams['blue']})
    conf, state = env.read('nginx/upstreams.conf'), env.read('state.json')
    broken = dict(env.upstreams, green=['%s-no-such-host:8000' % env.service])
    failed, result = switch(run_module, env, color='blue', upstreams=broken)
    assert failed
    assert 'nginx -t rejected the new upstreams.conf (previous config restored)' in result['msg']
    assert 'host not found in upstream' in result['msg']
    assert env.read('nginx/upstreams.conf') == conf and env.read('state.json') == state
    assert env.audit()[-1]['result'].startswith('failed: nginx -t rejected')
    assert env.colors_seen(10) == {'blue': 10}
    assert read_lock(env.dir + '/lock') is None


@pytest.mark.docker
def test_failed_verification_switches_back(run_module, env):
    switch(run_module, env, color='blue')
    conf = env.read('nginx/upstreams.conf')
    # /gateway/health names no color, so no request can count as reaching green.
    failed, result = switch(run_module, env, color='green', verify_timeout=2,
                            verify_url='https://127.0.0.1:%d/gateway/health' % env.https_port)
    assert failed and 'verify: only 0 of 10 consecutive requests' in result['msg']
    assert 'previous config restored' in result['msg']
    assert env.read('nginx/upstreams.conf') == conf
    assert json.loads(env.read('state.json'))['active'] == 'blue'
    assert env.colors_seen(10) == {'blue': 10}


@pytest.mark.docker
def test_weights_split_traffic_and_the_header_overrides(run_module, env):
    switch(run_module, env, color='blue')
    # Without the operator key the gateway ignores X-QA-Color: the per-color check fails (3 requests
    # forcing blue all reach it by its 10 % weight: chance 1e-3).
    failed, result = switch(run_module, env, weights={'blue': 10, 'green': 90}, verify_timeout=3)
    assert failed and 'set verify_api_key' in result['msg'] and 'traffic back on blue' in result['msg']
    key = env.operator_key()
    failed, result = switch(run_module, env, weights={'blue': 50, 'green': 50},
                            expect={'kb_checksum': 'sum-green'}, verify_api_key=key)
    assert not failed, result['msg']
    assert key not in json.dumps(result)  # no_log
    assert result['active'] == 'blue' and result['weights'] == {'blue': 50, 'green': 50}
    assert result['audit']['to'] == 'green'
    seen = env.colors_seen(200)
    assert 60 <= seen.get('green', 0) <= 140, seen  # 50 % +- 20 points; chance of a miss ~1e-8
    pinned = {'Authorization': 'Bearer ' + key}
    assert env.colors_seen(10, headers=dict(pinned, **{'X-QA-Color': 'green'})) == {'green': 10}
    assert env.colors_seen(10, headers=dict(pinned, **{'X-QA-Color': 'blue'})) == {'blue': 10}
    failed, result = switch(run_module, env, weights={'blue': 0, 'green': 100})
    assert not failed and (result['active'], result['previous']) == ('green', 'blue')
    assert env.colors_seen(20) == {'green': 20}


@pytest.mark.docker
def test_tester_keys_see_the_canary_whatever_its_weight(run_module, env):
    switch(run_module, env, color='blue')
    tester = {'Authorization': 'Bearer ' + TESTER_KEY}
    assert env.colors_seen(5, headers=tester) == {'blue': 5}  # no canary: the weights
    failed, result = switch(run_module, env, weights={'blue': 95, 'green': 5}, verify_api_key=env.operator_key())
    assert not failed, result['msg']
    assert env.colors_seen(20, headers=tester) == {'green': 20}
    assert env.colors_seen(40).get('blue', 0) >= 30  # everyone else: 95 % blue
    failed, result = switch(run_module, env, color='blue', action='abort')
    assert not failed and env.colors_seen(5, headers=tester) == {'blue': 5}


@pytest.mark.docker
def test_release_is_recorded_and_expected(run_module, env):
    env.set_health('blue', release='a' * 64)
    failed, result = switch(run_module, env, color='blue', expect={'release': 'a' * 64})
    assert not failed, result['msg']
    assert json.loads(env.read('state.json'))['colors']['blue']['release'] == 'a' * 64
    assert result['audit']['colors']['blue']['release'] == 'a' * 64
    env.set_health('green', release='b' * 64)
    failed, result = switch(run_module, env, color='green', expect={'release': 'c' * 64})
    assert failed and 'reports release %s, expected %s' % ('b' * 64, 'c' * 64) in result['msg']
    assert env.colors_seen(5) == {'blue': 5}


@pytest.mark.docker
def test_state_write_failing_after_the_reload_says_what_is_served(run_module, env):
    switch(run_module, env, color='blue')
    state = env.read('state.json')
    # A real fault: an immutable state.json refuses the atomic rename (EPERM), even to root.
    if subprocess.call(['chattr', '+i', env.dir + '/state.json']) != 0:
        pytest.skip('chattr +i is not supported here')
    try:
        failed, result = switch(run_module, env, color='green')
    finally:
        subprocess.call(['chattr', '-i', env.dir + '/state.json'])
    assert failed
    assert 'nginx now serves green, but %s/state.json could not be written' % env.dir in result['msg']
    assert 'still names blue' in result['msg'] and 'bluegreen_reconcile' in result['msg']
    assert env.read('state.json') == state and env.colors_seen(10) == {'green': 10}
    assert env.audit()[-1]['result'].startswith('failed: nginx now serves green')
    assert read_lock(env.dir + '/lock') is None


@pytest.mark.docker
def test_a_held_lock_fails_at_once_and_its_token_lets_the_holder_in(run_module, env):
    dummy, lock = acquire(env.dir + '/lock', env.service, 'deploy')
    failed, result = switch(run_module, env, color='blue')
    assert failed and result['msg'].startswith('service %s is locked by %s (operation deploy, pid %d)'
                                               % (env.service, lock['holder'], lock['pid']))
    assert env.read('state.json') is None
    failed, result = switch(run_module, env, color='blue', lock_token=lock['token'])
    assert not failed, result['msg']
    assert read_lock(env.dir + '/lock') == lock  # the holder's lease stays held
    failed, result = switch(run_module, env, color='green', lock_token='not-the-token')
    assert failed and 'does not match' in result['msg']


# -- playbooks/rollback.yml and playbooks/status.yml on the same gateway ----------

@pytest.mark.docker
def test_rollback_playbook_goes_back(run_module, env):
    # How fast is a benchmark figure (make bench-switch: rollback.yml wall time), not asserted here.
    switch(run_module, env, color='blue')
    switch(run_module, env, color='green')
    returncode, output = env.playbook('playbooks/rollback.yml')
    assert returncode == 0, output[-3000:]
    assert 'traffic back on blue (from green' in output
    assert env.colors_seen(20) == {'blue': 20}
    state = json.loads(env.read('state.json'))
    assert (state['active'], state['previous']) == ('blue', 'green')
    assert env.audit()[-1]['action'] == 'rollback' and env.audit()[-1]['result'] == 'ok'

    returncode, output = env.playbook('playbooks/status.yml')
    assert returncode == 0, output[-3000:]
    assert 'active blue, previous green, weights blue=100 green=0' in output
    assert 'green: recorded kb kb-green checksum sum-green' in output
    assert 'now ready kb sum-green' in output
    assert 'lock: free' in output


@pytest.mark.docker
def test_rollback_playbook_refuses_an_unready_previous_color(run_module, env):
    switch(run_module, env, color='blue')
    switch(run_module, env, color='green')
    env.set_health('blue', status='loading')
    returncode, output = env.playbook('playbooks/rollback.yml', '-e', 'rollback_health_timeout=1')
    assert returncode != 0
    assert 'Rollback of %s to blue refused' % env.service in output
    assert 'is loading, not ready' in output and 'Traffic stays on green' in output
    assert env.colors_seen(10) == {'green': 10}


@pytest.mark.docker
def test_rollback_playbook_refuses_without_a_previous_color(run_module, env):
    returncode, output = env.playbook('playbooks/rollback.yml')
    assert returncode != 0 and 'it was never deployed' in output
    switch(run_module, env, color='blue')
    returncode, output = env.playbook('playbooks/rollback.yml')
    assert returncode != 0 and 'there is no previous color (active blue)' in output
    assert env.colors_seen(5) == {'blue': 5}
