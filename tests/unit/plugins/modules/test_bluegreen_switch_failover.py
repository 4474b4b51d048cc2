# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bluegreen_switch's failover to the other color, on a real nginx gateway (tests/unit/_docker_fixtures.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import time

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._state import atomic_write
from ansible_collections.llmops.bluegreen.plugins.modules import bluegreen_switch


@pytest.fixture
def env(bluegreen_env):
    bluegreen_env.reset()
    return bluegreen_env


def switch(run_module, env, **args):
    return run_module(bluegreen_switch, env.switch_args(**args))


@pytest.mark.docker
def test_clients_fail_over_to_the_other_color_when_theirs_is_down_and_operators_do_not(run_module, env):
    assert not switch(run_module, env, color='blue')[0]
    assert 'server %s backup;' % env.upstreams['green'][0] in env.read('nginx/upstreams.conf')
    pinned = {'Authorization': 'Bearer ' + env.operator_key()}
    blue = env.client.containers.get('%s-qa-blue' % env.service)
    blue.stop(timeout=1)
    try:
        # Clients: answered by green, and told so (header and body). The first request waits for the
        # connect to blue's vanished address to time out (gateway_connect_timeout); the next ones skip
        # blue for nginx's fail_timeout (10 s) and are answered at once.
        assert env.probe(timeout=30) == (200, 'green', 'green')
        started = time.time()
        assert env.colors_seen(10) == {'green': 10}
        assert time.time() - started < 5
        # Operators see the color they are routed to, down: never failed over.
        # (502 when the connect is refused, 504 when it times out, as to a vanished container here.)
        for headers in (pinned, dict(pinned, **{'X-QA-Color': 'blue'})):
            status, header, dummy = env.probe(headers, timeout=30)
            assert status in (502, 504) and header == 'blue', (status, header)
    finally:
        blue.start()
    deadline = time.time() + 30  # blue back (nginx retries it after fail_timeout; the watcher follows a new address)
    while env.probe()[1] != 'blue':
        assert time.time() < deadline, 'blue did not answer again within 30 s'
        time.sleep(0.5)
    # failover off: a client of a color that is down gets the gateway's error, not another color.
    assert not switch(run_module, env, color='blue', failover=False)[0]
    assert 'backup' not in env.read('nginx/upstreams.conf')


@pytest.mark.docker
def test_the_gateway_role_upgrades_an_upstreams_conf_from_before_failover(run_module, env):
    assert not switch(run_module, env, color='blue')[0]
    whole = env.read('nginx/upstreams.conf')
    # What bluegreen_switch wrote before failover: no _failover blocks, no $llmops_upstream.
    old = re.sub(r'upstream llmops_\w+_failover \{.*?\}\n', '', whole.split('# The upstream block')[0], flags=re.S)
    atomic_write(env.conf, old)
    gateway = env.client.containers.get(env.gateway)
    assert gateway.exec_run(['nginx', '-t'])[0] != 0  # today's nginx.conf routes with a variable it lacks
    try:
        # An upgrade: the role renders a changed nginx.conf (here another timeout) over the old file.
        returncode, output = env.playbook(os.path.join(env.base, 'gateway.yml'), '-e', 'gateway_read_timeout=599')
        assert returncode == 0, output[-3000:]
        upgraded = env.read('nginx/upstreams.conf')
        assert upgraded.startswith(old) and 'map "" $llmops_upstream {' in upgraded
        assert gateway.exec_run(['nginx', '-t'])[0] == 0
        assert env.colors_seen(5) == {'blue': 5}
        # The next switch renders it whole again.
        assert not switch(run_module, env, color='blue')[0]
        assert env.read('nginx/upstreams.conf') == whole
    finally:
        env.run_gateway_role()  # the session's gateway as the other tests know it
