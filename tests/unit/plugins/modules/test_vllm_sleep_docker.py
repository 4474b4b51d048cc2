# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/retire.yml parks the previous color's vLLM server after the grace period and
playbooks/rollback.yml wakes it before its switch: the real playbooks, the real gateway of the
shared ``bluegreen_env`` fixture, and for each color's inference server the vLLM DOUBLE
(tests/roles/doubles/vllm_double.py: a real HTTP server that is NOT vLLM, since no GPU is lent
here) in a container of the llama.cpp image the repo builds ($LLM_IMAGE), named as the color's
vLLM server. The colors' qa-api are the fixture's /health responders (no python3 in them), so the
rollback runs with release_wake_qa false: the qa-api wait after a wake is not exercised here.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import json
import os
import time

import pytest

from _docker_fixtures import REPO, docker_client_with
from ansible_collections.llmops.bluegreen.plugins.modules import bluegreen_switch

pytestmark = pytest.mark.docker

LLM_IMAGE = os.environ.get('LLM_IMAGE', 'llmops/llm-llamacpp:dev')
DOUBLES = os.path.join(REPO, 'tests', 'roles', 'doubles')


class Double(object):
    """The vLLM double of one color, in a container named as that color's vLLM server."""

    def __init__(self, client, env, color, sleep_mode):
        self.name = '%s-llm-%s' % (env.service, color)
        self.container = client.containers.run(
            LLM_IMAGE, name=self.name, detach=True, network=env.network, entrypoint=['python3', '/double/vllm_double.py'],
            command=['--port', '8000', '--wake-seconds', '1', '--health-lag', '2']
            + (['--enable-sleep-mode'] if sleep_mode else []),
            environment={'VLLM_SERVER_DEV_MODE': '1'} if sleep_mode else {},
            volumes={DOUBLES: {'bind': '/double', 'mode': 'ro'}}, labels={'llmops.service': env.service})
        deadline = time.time() + 30
        while self.get('/v1/models') is None:
            assert time.time() < deadline, 'the vLLM double %s did not start: %s' % (self.name, self.container.logs())
            time.sleep(0.3)

    def get(self, path):
        code = 'import urllib.request,sys; print(urllib.request.urlopen("http://127.0.0.1:8000" + sys.argv[1]).read().decode())'
        rc, out = self.container.exec_run(['python3', '-c', code, path])
        return json.loads(out.decode()) if rc == 0 else None

    def calls(self):
        """Every request it answered (from its log: also after it stopped)."""
        lines = self.container.logs(stderr=False).decode().splitlines()
        return [json.loads(line) for line in lines if line.startswith('{')]

    def posts(self):
        return [c['path'] for c in self.calls() if c['method'] == 'POST']

    def remove(self):
        self.container.remove(force=True)


@pytest.fixture
def fleet(bluegreen_env, run_module, tmp_path):
    """Gateway active on green, blue the previous color; a vLLM double per color; an inventory."""
    client = docker_client_with(LLM_IMAGE, 'make host builds it; set LLM_IMAGE (.cache/images.env)')
    env = bluegreen_env
    env.reset()
    for color in ('blue', 'green'):
        failed, result = run_module(bluegreen_switch, env.switch_args(color=color))
        assert not failed, result
    doubles = {}

    def start(sleep_mode):
        # The fixture's inventory (gateway settings), with the group retire.yml runs on and vLLM per color.
        with open(env.inventory) as handle:
            data = json.load(handle)
        data['all']['children']['llmops'] = {'hosts': {'localhost': {}}}
        data['all']['vars'].update(inference_engine='vllm', inference_mode='independent',
                                   inference_vllm_sleep_mode=sleep_mode)
        inventory = tmp_path / 'inventory.json'
        inventory.write_text(json.dumps(data))
        for color in ('blue', 'green'):
            doubles[color] = Double(client, env, color, sleep_mode)
        return str(inventory), doubles

    yield start
    for double in doubles.values():
        double.remove()


def play(env, inventory, playbook, check=False, **extra):
    # env.playbook runs with env.inventory: the shared fixture's own is put back at once.
    shared, env.inventory = env.inventory, inventory
    try:
        return env.playbook(os.path.join(REPO, 'playbooks', playbook), '-e', json.dumps(extra),
                            *(['--check'] if check else []))
    finally:
        env.inventory = shared


def epoch(text):
    return calendar.timegm(time.strptime(text, '%Y-%m-%dT%H:%M:%SZ'))


def test_retire_parks_the_previous_color_and_rollback_wakes_it_before_the_switch_with_a_vllm_double(bluegreen_env, fleet):
    env = bluegreen_env
    inventory, doubles = fleet(sleep_mode=True)

    # Within the grace period nothing is parked.
    rc, out = play(env, inventory, 'retire.yml', release_grace_period=3600)
    assert rc == 0, out[-3000:]
    assert doubles['blue'].posts() == [] and doubles['blue'].get('/is_sleeping') == {'is_sleeping': False}

    # After it (0 s), the previous color's server sleeps; the active color's is never touched.
    rc, out = play(env, inventory, 'retire.yml', release_grace_period=0)
    assert rc == 0, out[-3000:]
    assert doubles['blue'].get('/is_sleeping') == {'is_sleeping': True}, out[-3000:]
    assert doubles['blue'].posts() == ['/sleep?level=1'] and doubles['green'].posts() == []
    parked = [r for r in env.audit() if r['action'] == 'retire_sleep']
    assert [r['color'] for r in parked] == ['blue'], env.audit()
    # The gateway and the qa-api stay: a parked color is still deployed.
    assert json.loads(env.read('state.json'))['active'] == 'green'

    # Parking again changes nothing (no second /sleep, no second audit line).
    rc, out = play(env, inventory, 'retire.yml', release_grace_period=0)
    assert rc == 0 and doubles['blue'].posts() == ['/sleep?level=1'], out[-3000:]
    assert len([r for r in env.audit() if r['action'] == 'retire_sleep']) == 1

    # A dry run says it would wake blue, and wakes nothing.
    rc, out = play(env, inventory, 'rollback.yml', check=True, release_wake_qa=False)
    assert rc == 0 and 'Wake and wait until it serves, the vLLM server of blue] *** changed:' in out, out[-3000:]
    assert doubles['blue'].posts() == ['/sleep?level=1'] and doubles['blue'].get('/is_sleeping') == {'is_sleeping': True}
    assert json.loads(env.read('state.json'))['active'] == 'green'

    rc, out = play(env, inventory, 'rollback.yml', release_wake_qa=False)
    assert rc == 0, out[-3000:]
    assert json.loads(env.read('state.json'))['active'] == 'blue'
    assert doubles['blue'].get('/is_sleeping') == {'is_sleeping': False}
    calls = doubles['blue'].calls()
    woke = [c for c in calls if c['path'] == '/wake_up']
    healthy = [c for c in calls if c['path'] == '/health' and c['status'] == 200 and c['t'] > woke[0]['t']]
    assert len(woke) == 1 and healthy, calls
    # (That the wake waits through a /health 503 is tested over loopback in test_vllm_sleep.py: here a
    # docker exec on a loaded machine can outlast the double's lag, so only the order is asserted.)
    records = env.audit()
    actions = [r['action'] for r in records]
    wake, rollback = actions.index('wake'), len(actions) - 1 - actions[::-1].index('rollback')
    assert wake < rollback and records[wake]['color'] == 'blue', actions
    # The switch was recorded only after the woken server first answered /health 200 (to the second).
    assert epoch(records[rollback]['time']) >= int(healthy[0]['t']), (records[rollback], healthy[0])


def test_with_sleep_mode_off_nothing_calls_sleep_with_a_vllm_double(bluegreen_env, fleet):
    env = bluegreen_env
    inventory, doubles = fleet(sleep_mode=False)
    # The server has no sleep mode: parking is refused before any request, naming the fix.
    rc, out = play(env, inventory, 'retire.yml', release_grace_period=0, llmops_retire_mode='sleep')
    assert rc != 0 and 'sleep only with inference_engine vllm and inference_vllm_sleep_mode true' in out, out[-3000:]
    rc, out = play(env, inventory, 'rollback.yml', release_wake_qa=False)
    assert rc == 0 and json.loads(env.read('state.json'))['active'] == 'blue', out[-3000:]
    rc, out = play(env, inventory, 'retire.yml', release_grace_period=0, llmops_retire_mode='cold')
    assert rc == 0, out[-3000:]
    for color in ('blue', 'green'):
        paths = [c['path'] for c in doubles[color].calls()]
        assert not [p for p in paths if p.startswith(('/sleep', '/wake_up', '/is_sleeping'))], (color, paths)
    assert 'wake' not in [r['action'] for r in env.audit()]
