# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bluegreen_reconcile against a real nginx gateway and two colors (see tests/unit/_docker_fixtures.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import subprocess

import pytest

from _docker_fixtures import free_port
from ansible_collections.llmops.bluegreen.plugins.module_utils._lock import acquire, read_lock
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import atomic_write
from ansible_collections.llmops.bluegreen.plugins.module_utils._upstreams import render
from ansible_collections.llmops.bluegreen.plugins.modules import bluegreen_reconcile, bluegreen_switch

R_BLUE, R_GREEN = 'b' * 64, 'a' * 64


@pytest.fixture
def env(bluegreen_env):
    bluegreen_env.reset()
    bluegreen_env.set_health('blue', release=R_BLUE)
    bluegreen_env.set_health('green', release=R_GREEN)
    return bluegreen_env


def reconcile(run_module, env, check_mode=False, diff=False, **extra):
    args = dict((key, value) for key, value in env.switch_args().items()
                if key in ('service', 'state_dir', 'gateway_container', 'verify_url', 'validate_certs'))
    args.update(extra)
    return run_module(bluegreen_reconcile, args, check_mode=check_mode, diff=diff)


def switch(run_module, env, **args):
    failed, result = run_module(bluegreen_switch, env.switch_args(**args))
    return failed, result


def killed_after_reload(run_module, env, color):
    """A switch whose state.json write fails after the reload (immutable file): nginx serves ``color``."""
    path = env.dir + '/state.json'
    if subprocess.call(['chattr', '+i', path]) != 0:
        pytest.skip('chattr +i is not supported here')
    try:
        failed, result = switch(run_module, env, color=color)
    finally:
        subprocess.call(['chattr', '-i', path])
    assert failed and 'nginx now serves %s' % color in result['msg'], result['msg']


@pytest.mark.docker
def test_nothing_deployed_and_in_sync_change_nothing(run_module, env):
    failed, result = reconcile(run_module, env)
    assert not failed and not result['changed'] and result['active'] is None, result
    assert env.read('state.json') is None and env.read('audit.log') is None
    switch(run_module, env, color='blue')
    state = env.read('state.json')
    failed, result = reconcile(run_module, env)
    assert not failed and not result['changed'] and result['mismatches'] == []
    assert result['msg'] == 'state.json of %s matches what the gateway serves (blue)' % env.service
    assert result['seen'] == {'blue': 10} and env.read('state.json') == state
    assert read_lock(env.dir + '/lock') is None


@pytest.mark.docker
def test_state_behind_the_gateway_is_repaired_and_audited(run_module, env):
    switch(run_module, env, color='blue')
    killed_after_reload(run_module, env, 'green')
    before = json.loads(env.read('state.json'))
    assert before['active'] == 'blue' and env.colors_seen(10) == {'green': 10}
    audits = len(env.audit())

    failed, predicted = reconcile(run_module, env, check_mode=True, diff=True)
    assert not failed and predicted['changed']
    assert json.loads(predicted['diff']['before'])['active'] == 'blue'
    assert json.loads(predicted['diff']['after'])['active'] == 'green'
    assert json.loads(env.read('state.json')) == before and len(env.audit()) == audits

    failed, result = reconcile(run_module, env, operator='alice')
    assert not failed and result['changed'], result
    assert result['msg'].startswith('repaired state.json of %s: it named active blue (serial %d), the gateway '
                                    'serves green; now serial %d' % (env.service, before['serial'],
                                                                     before['serial'] + 1))
    state = json.loads(env.read('state.json'))
    assert state == result['state'] and state['serial'] == predicted['state']['serial']
    assert (state['active'], state['previous']) == ('green', 'blue')
    assert state['weights'] == {'blue': 0, 'green': 100}
    assert state['colors']['green']['release'] == R_GREEN and state['colors']['green']['kb_checksum'] == 'sum-green'
    assert state['colors']['blue'] == before['colors']['blue']
    record = env.audit()[-1]
    assert (record['action'], record['operator'], record['from'], record['to']) == ('reconcile', 'alice', 'blue', 'green')
    assert record['before']['active'] == 'blue' and record['serial'] == state['serial']
    assert 'state.json names active blue, the gateway serves green' in record['mismatches']

    failed, again = reconcile(run_module, env)
    assert not failed and not again['changed']
    # The next switch starts from the truth: back to blue is a change with previous green.
    failed, result = switch(run_module, env, color='blue')
    assert not failed and (result['active'], result['previous']) == ('blue', 'green')


@pytest.mark.docker
def test_a_replaced_live_color_is_recorded(run_module, env):
    switch(run_module, env, color='blue')
    env.set_health('blue', release='c' * 64)
    failed, result = reconcile(run_module, env)
    assert not failed and result['changed']
    assert result['mismatches'] == ['state.json records blue release %s, %s reports %s'
                                    % (R_BLUE, env.upstreams['blue'][0], 'c' * 64)]
    assert json.loads(env.read('state.json'))['colors']['blue']['release'] == 'c' * 64


@pytest.mark.docker
def test_a_config_written_but_not_loaded_fails_naming_both(run_module, env):
    switch(run_module, env, color='blue')
    state, audit = env.read('state.json'), env.read('audit.log')
    atomic_write(env.conf, render(env.service, env.upstreams, {'green': 100}))  # no reload
    failed, result = reconcile(run_module, env, verify_api_key=env.operator_key())
    assert failed
    assert 'upstreams.conf routes blue=0 green=100, but requests to %s were served by blue (10)' % env.url \
        in result['msg']
    assert 'requests with the operator key (never failed over) were too' in result['msg']
    assert 'reload nginx' in result['msg'] and 'upstreams.conf.bak' in result['msg']
    assert (env.read('state.json'), env.read('audit.log')) == (state, audit)
    assert read_lock(env.dir + '/lock') is None


@pytest.mark.docker
def test_gateway_not_answering_fails_naming_the_fix(run_module, env):
    switch(run_module, env, color='blue')
    failed, result = reconcile(run_module, env, verify_url='https://127.0.0.1:%d/health' % free_port(), probe_count=2)
    assert failed and 'every request to' in result['msg'] and 'start the gateway' in result['msg']


@pytest.mark.docker
def test_lock_held_fails_token_enters_and_an_abandoned_one_is_taken_over(run_module, env):
    switch(run_module, env, color='blue')
    dummy, lock = acquire(env.dir + '/lock', env.service, 'deploy')
    failed, result = reconcile(run_module, env)
    assert failed and 'is locked by' in result['msg']
    failed, result = reconcile(run_module, env, lock_token=lock['token'])
    assert not failed and read_lock(env.dir + '/lock') == lock
    # The holder was killed: its play's process is gone.
    atomic_write(env.dir + '/lock', json.dumps(dict(lock, pid=2 ** 22 + 1, pid_of='play', pid_start=1)))
    failed, result = reconcile(run_module, env)
    assert not failed, result['msg']
    assert read_lock(env.dir + '/lock') is None
    record = env.audit()[-1]
    assert record['action'] == 'takeover' and record['lock']['pid'] == 2 ** 22 + 1
    assert record['reason'] == 'the ansible-playbook process %d that held it is gone' % (2 ** 22 + 1)


@pytest.mark.docker
def test_operator_key_checks_each_deployed_color(run_module, env):
    switch(run_module, env, color='blue')
    failed, result = reconcile(run_module, env, verify_api_key=env.operator_key())
    assert not failed and not result['changed'], result.get('msg')
    failed, result = reconcile(run_module, env, verify_api_key='not-an-operator-key-0123456789')
    assert failed and 'a request with X-QA-Color: green got HTTP' in result['msg']


def failed_over(env, color):
    """Clients of ``color`` failed over: its server closes /health connections, and the requests go to the other."""
    env.drop(color)
    other = [name for name in env.upstreams if name != color][0]
    assert env.colors_seen(3) == {other: 3}


@pytest.mark.docker
def test_a_color_that_answers_again_after_a_failover_is_told_from_a_file_not_loaded(run_module, env):
    switch(run_module, env, color='green')
    state = env.read('state.json')
    failed_over(env, 'green')
    env.drop('green', on=False)
    # nginx keeps green's server out for its fail_timeout: clients are still served by blue.
    assert env.colors_seen(3) == {'blue': 3}
    failed, result = reconcile(run_module, env, verify_api_key=env.operator_key())
    assert not failed and not result['changed'] and result['active'] == 'green', result.get('msg')
    warned = json.dumps(result.get('warnings'))
    assert 'were served by blue (10)' in warned and 'the servers of green answer from the gateway now' in warned, warned
    assert 'requests with the operator key are routed as the file says' in warned
    assert env.read('state.json') == state
    # Without an operator key, a later round tells (green is back in nginx after its fail_timeout).
    failed_over(env, 'green')
    env.drop('green', on=False)
    failed, result = reconcile(run_module, env)
    assert not failed and result['seen'] == {'green': 10}, result.get('msg')
    assert 'a later round was routed as the file says' in json.dumps(result.get('warnings'))


@pytest.mark.docker
def test_a_routed_color_that_does_not_answer_fails_naming_its_server(run_module, env):
    switch(run_module, env, color='green')
    state, audit = env.read('state.json'), env.read('audit.log')
    failed_over(env, 'green')
    failed, result = reconcile(run_module, env, verify_api_key=env.operator_key())
    assert failed
    assert 'upstreams.conf routes blue=0 green=100, but requests to %s were served by blue (10)' % env.url \
        in result['msg']
    assert 'clients are failed over to the other color because %s is unreachable from the gateway' \
        % env.upstreams['green'][0] in result['msg'] and 'start those containers' in result['msg'], result['msg']
    assert (env.read('state.json'), env.read('audit.log')) == (state, audit)
    env.drop('green', on=False)
