# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vllm_sleep through its main(), over a URL against the vLLM double (tests/roles/doubles/vllm_double.py,
a real HTTP server that is NOT vLLM: no GPU is lent here) run as a local process on loopback."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from ansible.module_utils.six.moves.urllib.request import urlopen

from ansible_collections.llmops.bluegreen.plugins.modules import vllm_sleep

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
DOUBLE = os.path.join(REPO, 'tests', 'roles', 'doubles', 'vllm_double.py')


def free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def vllm_double(request):
    """Start the double: ``vllm_double(sleep_mode=True)`` -> its base URL; stopped after the test."""
    procs = []

    def start(sleep_mode=True, wake_seconds=0.3, health_lag=1.0):
        port = free_port()
        env = dict(os.environ, VLLM_SERVER_DEV_MODE='1' if sleep_mode else '0')
        args = [sys.executable, DOUBLE, '--port', str(port), '--wake-seconds', str(wake_seconds),
                '--health-lag', str(health_lag), '--sleep-seconds', '0.1'] + (['--enable-sleep-mode'] if sleep_mode else [])
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL))
        url = 'http://127.0.0.1:%d' % port
        deadline = time.time() + 10
        while True:
            try:
                urlopen(url + '/v1/models', timeout=1).read()
                return url
            except Exception:  # pylint: disable=broad-except
                assert time.time() < deadline, 'the vLLM double did not start'
                time.sleep(0.1)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def calls(url):
    return json.loads(urlopen(url + '/_calls', timeout=5).read().decode())


def posts(url):
    return [c['path'] for c in calls(url) if c['method'] == 'POST']


def test_park_and_wake_with_a_vllm_double(run_module, vllm_double):
    url = vllm_double(health_lag=1.5)
    failed, result = run_module(vllm_sleep, {'url': url, 'state': 'asleep', 'interval': 1})
    assert not failed and result['changed'] and result['sleeping'] and result['action'] == 'sleep', result
    assert posts(url) == ['/sleep?level=1']
    # Asleep: the model cannot answer (503), as vLLM's protected endpoints.
    failed, result = run_module(vllm_sleep, {'url': url, 'state': 'asleep'})
    assert not failed and not result['changed'] and posts(url) == ['/sleep?level=1']

    failed, result = run_module(vllm_sleep, {'url': url, 'state': 'awake', 'interval': 1})
    assert not failed and result['changed'] and not result['sleeping'] and result['was_sleeping'], result
    seen = calls(url)
    woke = [i for i, c in enumerate(seen) if c['path'] == '/wake_up'][0]
    health = [c['status'] for c in seen[woke:] if c['path'] == '/health']
    # It waited through the double's health lag and returned on the first 200.
    assert health[0] == 503 and health[-1] == 200, health
    assert result['elapsed'] >= 1.5


def test_check_mode_posts_nothing_with_a_vllm_double(run_module, vllm_double):
    url = vllm_double()
    failed, result = run_module(vllm_sleep, {'url': url, 'state': 'asleep'}, check_mode=True)
    assert not failed and result['changed'] and result['sleeping']
    assert posts(url) == [] and json.loads(urlopen(url + '/is_sleeping').read().decode()) == {'is_sleeping': False}


def test_without_sleep_mode_parking_is_refused_and_nothing_calls_sleep_with_a_vllm_double(run_module, vllm_double):
    url = vllm_double(sleep_mode=False)
    failed, result = run_module(vllm_sleep, {'url': url, 'state': 'asleep'})
    assert failed and 'has no sleep mode' in result['msg'] and 'inference_vllm_sleep_mode: true' in result['msg']
    failed, result = run_module(vllm_sleep, {'url': url, 'state': 'awake'})
    assert not failed and not result['changed'] and not result['sleep_mode']
    assert posts(url) == []


def test_an_unreachable_server_fails_naming_it(run_module):
    failed, result = run_module(vllm_sleep, {'url': 'http://127.0.0.1:%d' % free_port(), 'state': 'awake'})
    assert failed and 'does not answer GET /is_sleeping' in result['msg']
