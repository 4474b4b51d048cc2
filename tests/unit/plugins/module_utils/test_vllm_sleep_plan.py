# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vLLM sleep mode decisions and the park/wake loop: pure, against an in-memory server (no network)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from _fakes import Clock
from ansible_collections.llmops.bluegreen.plugins.module_utils._vllm_sleep import (
    SleepError, converge, plan, read_sleeping)


@pytest.mark.parametrize('status, body, expected', [
    (200, '{"is_sleeping": true}', True),
    (200, '{"is_sleeping": false}', False),
    (404, '{"detail": "Not Found"}', None),   # no sleep mode: vLLM without the flag or dev mode
])
def test_read_sleeping(status, body, expected):
    assert read_sleeping('qa-llm-green', status, body, None) is expected


@pytest.mark.parametrize('status, body, error, message', [
    (None, '', 'Connection refused', 'does not answer GET /is_sleeping: Connection refused'),
    (401, '', None, 'give the key file inside the container'),
    (500, 'boom', None, 'HTTP 500: boom'),
    (200, '{"sleeping": true}', None, 'not {"is_sleeping": true|false}'),
    (200, 'yes', None, 'not {"is_sleeping": true|false}'),
])
def test_read_sleeping_refuses_what_it_cannot_read(status, body, error, message):
    with pytest.raises(SleepError, match=message.replace('(', r'\(').replace('|', r'\|').replace('{', r'\{')):
        read_sleeping('qa-llm-green', status, body, error)


@pytest.mark.parametrize('wanted, sleeping, action', [
    ('asleep', False, 'sleep'), ('asleep', True, None),
    ('awake', True, 'wake'), ('awake', False, None),
    ('awake', None, None),    # a server without sleep mode is never asleep
])
def test_plan(wanted, sleeping, action):
    assert plan('s', wanted, sleeping) == action


def test_plan_refuses_to_park_a_server_without_sleep_mode_and_names_the_fix():
    with pytest.raises(SleepError) as exc:
        plan('qa-llm-green', 'asleep', None)
    assert '--enable-sleep-mode' in str(exc.value) and 'VLLM_SERVER_DEV_MODE=1' in str(exc.value)
    assert 'inference_vllm_sleep_mode: true' in str(exc.value)


class Server(object):
    """In-memory vLLM sleep API on a fake clock: a wake is done at once, /health follows ``lag`` s later."""

    def __init__(self, clock, sleeping=False, sleep_mode=True, lag=0.0, never_healthy=False):
        self.name, self.clock, self.sleeping, self.sleep_mode = 'qa-llm-green', clock, sleeping, sleep_mode
        self.lag, self.never_healthy, self.healthy_at, self.calls = lag, never_healthy, 0.0, []

    def request(self, method, path, body=None, headers=None, timeout=10):
        self.calls.append((method, path))
        if path == '/health':
            ok = not self.never_healthy and self.clock() >= self.healthy_at
            return (200 if ok else 503), {}, '', None
        if not self.sleep_mode:
            return 404, {}, '{"detail": "Not Found"}', None
        if path == '/is_sleeping':
            return 200, {}, json.dumps({'is_sleeping': self.sleeping}), None
        if path.startswith('/sleep'):
            self.sleeping = True
        elif path == '/wake_up':
            self.sleeping, self.healthy_at = False, self.clock() + self.lag
        return 200, {}, '', None


def test_park_sends_sleep_level_1_and_confirms():
    clock = Clock()
    server = Server(clock)
    result = converge(server, 'asleep', clock=clock, sleep=clock.sleep)
    assert result['changed'] and result['sleeping'] and not result['was_sleeping'] and result['action'] == 'sleep'
    assert ('POST', '/sleep?level=1') in server.calls and server.sleeping


def test_wake_returns_only_once_health_answers():
    clock = Clock()
    server = Server(clock, sleeping=True, lag=7)
    result = converge(server, 'awake', interval=2, clock=clock, sleep=clock.sleep)
    assert result['changed'] and not result['sleeping'] and result['was_sleeping']
    assert clock() >= 7 and result['elapsed'] >= 7
    assert server.calls.index(('POST', '/wake_up')) < len(server.calls) - 1 and server.calls[-1] == ('GET', '/health')


def test_already_in_state_changes_nothing_and_posts_nothing():
    clock = Clock()
    for wanted, sleeping in (('asleep', True), ('awake', False)):
        server = Server(clock, sleeping=sleeping)
        assert not converge(server, wanted, clock=clock, sleep=clock.sleep)['changed']
        assert [c for c in server.calls if c[0] == 'POST'] == []


def test_check_mode_reports_the_change_without_posting():
    clock = Clock()
    server = Server(clock, sleeping=True)
    result = converge(server, 'awake', check_mode=True, clock=clock, sleep=clock.sleep)
    assert result['changed'] and not result['sleeping'] and server.sleeping
    assert [c for c in server.calls if c[0] == 'POST'] == []


def test_without_sleep_mode_awake_is_true_and_nothing_is_posted():
    clock = Clock()
    server = Server(clock, sleep_mode=False)
    result = converge(server, 'awake', clock=clock, sleep=clock.sleep)
    assert not result['changed'] and not result['sleep_mode']
    assert server.calls == [('GET', '/is_sleeping')]


def test_a_wake_that_never_serves_times_out_naming_what_it_saw():
    clock = Clock()
    server = Server(clock, sleeping=True, never_healthy=True)
    with pytest.raises(SleepError) as exc:
        converge(server, 'awake', timeout=10, interval=2, clock=clock, sleep=clock.sleep)
    assert 'is not awake 10 s after POST /wake_up: is_sleeping False, /health HTTP 503' in str(exc.value)
