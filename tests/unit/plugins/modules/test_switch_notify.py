# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release events reach a webhook (a real HTTP receiver on 127.0.0.1), and a dead webhook never fails a switch."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import threading

import pytest
from ansible.module_utils.six.moves import BaseHTTPServer

from ansible_collections.llmops.bluegreen.plugins.module_utils._notify import event_name, payload, post
from ansible_collections.llmops.bluegreen.plugins.modules import bluegreen_switch


class Receiver(object):
    """An HTTP server on a free loopback port that keeps every JSON body POSTed to it."""

    def __init__(self, status=204):
        self.bodies = []
        receiver = self

        class Handler(BaseHTTPServer.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (http.server's name)
                length = int(self.headers.get('Content-Length') or 0)
                receiver.bodies.append((self.headers.get('Content-Type'), json.loads(self.rfile.read(length))))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = BaseHTTPServer.HTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d/hook?token=s3cret' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.daemon = True
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    hook = Receiver()
    yield hook
    hook.close()


def record(**changes):
    base = {'action': 'switch', 'weights': {'blue': 0, 'green': 100}, 'result': 'ok', 'to': 'green'}
    base.update(changes)
    return base


@pytest.mark.parametrize('changes, event, failed', [
    ({}, 'switch', False),
    ({'weights': {'blue': 75, 'green': 25}}, 'canary_step', False),
    ({'action': 'abort', 'result': 'ok', 'reason': 'p99 12.0 s > 8 s'}, 'abort', False),
    ({'action': 'rollback', 'result': 'failed: verify: only 0 of 10'}, 'rollback', True),
])
def test_the_event_and_failed_flag_follow_the_audit_record(changes, event, failed):
    body = payload(record(**changes))
    assert (event_name(record(**changes)), body['event'], body['failed']) == (event, event, failed)
    assert body['to'] == 'green' and body.get('reason') == changes.get('reason')


def test_post_delivers_json_and_reports_failures_without_the_url(receiver):
    assert post(receiver.url, record()) is None
    assert receiver.bodies == [('application/json', payload(record()))]
    closed = Receiver()
    url = closed.url
    closed.close()
    warning = post(url, record(), timeout=2)
    assert warning.startswith('the notification webhook failed') and 's3cret' not in warning
    refusing = Receiver(status=500)
    try:
        assert 'HTTP Error 500' in post(refusing.url, record())
    finally:
        refusing.close()


def operator_key(env):
    with open(env.dir + '/gateway/operator.key') as handle:
        return handle.read().strip()


@pytest.fixture
def env(bluegreen_env):
    bluegreen_env.reset()
    return bluegreen_env


@pytest.mark.docker
def test_every_audited_switch_is_notified_with_its_reason(run_module, env, receiver):
    failed, result = run_module(bluegreen_switch, env.switch_args(color='blue', notify_url=receiver.url))
    assert not failed, result['msg']
    failed, result = run_module(bluegreen_switch, env.switch_args(
        weights={'blue': 80, 'green': 20}, notify_url=receiver.url, verify_api_key=operator_key(env)))
    assert not failed, result['msg']
    failed, result = run_module(bluegreen_switch, env.switch_args(
        color='blue', action='abort', reason='error_rate 0.2 > 0.01', notify_url=receiver.url))
    assert not failed, result['msg']
    events = [(body['event'], body['to'], body['failed'], body.get('reason')) for dummy, body in receiver.bodies]
    assert events == [('switch', 'blue', False, None), ('canary_step', 'green', False, None),
                      ('abort', 'blue', False, 'error_rate 0.2 > 0.01')]
    assert env.audit()[-1]['reason'] == 'error_rate 0.2 > 0.01'
    # Nothing to do: no audit line, so no notification either.
    failed, result = run_module(bluegreen_switch, env.switch_args(color='blue', notify_url=receiver.url))
    assert not failed and not result['changed'] and len(receiver.bodies) == 3


@pytest.mark.docker
def test_a_dead_webhook_is_a_warning_and_the_switch_happens(run_module, env):
    dead = Receiver()
    url = dead.url
    dead.close()
    failed, result = run_module(bluegreen_switch, env.switch_args(color='green', notify_url=url, notify_timeout=2))
    assert not failed and result['changed'], result.get('msg')
    warnings = json.dumps(result.get('warnings'))
    assert 'the notification webhook failed' in warnings and 's3cret' not in warnings
    assert env.colors_seen(6) == {'green': 6}
