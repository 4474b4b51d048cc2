# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway role on a host whose routed color containers were removed (real nginx, tests/unit/_docker_fixtures.py).

nginx resolves every upstream server when it loads a file: before the fix, a deploy on such
a host failed with a gateway that could not reload, or (restarted since) restarted in a loop
on "host not found in upstream". A container is "removed" here by renaming it: its name no
longer resolves and no container has it; the name is given back at the end.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import json
import os
import time

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._reconcile import parse_upstreams
from ansible_collections.llmops.bluegreen.plugins.modules import bluegreen_reconcile, bluegreen_switch


@pytest.fixture
def env(bluegreen_env):
    bluegreen_env.reset()
    yield bluegreen_env
    for color in ('blue', 'green'):
        name = '%s-qa-%s' % (bluegreen_env.service, color)
        for container in bluegreen_env.client.containers.list(all=True, filters={'name': name + '-away'}):
            container.rename(name)
    for backup in glob.glob(bluegreen_env.conf + '.*~'):
        os.unlink(backup)
    bluegreen_env.run_gateway_role()  # the gateway as the other tests know it (running, bootstrap after reset)


def remove(env, color):
    env.client.containers.get('%s-qa-%s' % (env.service, color)).rename('%s-qa-%s-away' % (env.service, color))


def gateway_role(env):
    returncode, output = env.playbook(os.path.join(env.base, 'gateway.yml'))
    assert returncode == 0, output[-4000:]
    return output


def routing(env):
    return parse_upstreams(env.read('nginx/upstreams.conf'))


@pytest.mark.docker
def test_a_removed_idle_color_leaves_the_routing_and_the_active_one_keeps_serving(run_module, env):
    assert not run_module(bluegreen_switch, env.switch_args(color='blue'))[0]
    before = env.read('nginx/upstreams.conf')
    remove(env, 'green')
    output = gateway_role(env)
    gone = '%s-qa-green:8000' % env.service
    assert 'WARNING: upstreams.conf routes to %s, whose containers no longer exist' % gone in output, output[-3000:]
    assert routing(env) == {'weights': {'blue': 100}, 'upstreams': {'blue': env.upstreams['blue']}}
    assert [open(path).read() for path in glob.glob(env.conf + '.*~')] == [before]  # the previous file beside it
    # Reloaded: nginx -t passes and clients are served by blue.
    env.exec(['nginx', '-t'])
    assert env.colors_seen(5) == {'blue': 5}
    # The next run has nothing to route around.
    assert 'no longer exist' not in gateway_role(env)


@pytest.mark.docker
def test_a_gateway_restarted_after_the_active_color_was_removed_serves_the_other_and_reconcile_agrees(run_module, env):
    assert not run_module(bluegreen_switch, env.switch_args(color='blue'))[0]
    remove(env, 'blue')
    gateway = env.client.containers.get(env.gateway)
    gateway.restart(timeout=5)  # a host reboot: nginx starts on a file naming a container that is gone
    deadline = time.time() + 20
    while not gateway.attrs['State'].get('Restarting') and gateway.attrs['State'].get('ExitCode', 0) == 0:
        assert time.time() < deadline, 'the gateway did not fail to start: %s' % json.dumps(gateway.attrs['State'])
        time.sleep(0.5)
        gateway.reload()
    assert 'host not found in upstream' in gateway.logs(tail=20).decode('utf-8', 'replace')

    output = gateway_role(env)
    assert 'routes to %s-qa-blue:8000, whose containers no longer exist' % env.service in output, output[-3000:]
    assert 'now green=100' in output
    assert routing(env)['weights'] == {'green': 100}
    gateway.reload()
    assert gateway.attrs['State']['Running'] and not gateway.attrs['State']['Restarting']
    assert env.colors_seen(5) == {'green': 5}
    # state.json still names blue active: the reconcile every release starts with repairs it to what is served.
    args = dict((key, value) for key, value in env.switch_args().items()
                if key in ('service', 'state_dir', 'gateway_container', 'verify_url', 'validate_certs'))
    failed, result = run_module(bluegreen_reconcile, args)
    assert not failed and result['changed'] and result['active'] == 'green', result
    assert json.loads(env.read('state.json'))['active'] == 'green'
    assert env.audit()[-1]['action'] == 'reconcile' and env.audit()[-1]['from'] == 'blue'
