# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""slo_check against a stand-in Prometheus HTTP API on 127.0.0.1 (the real one: tests/monitoring)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest

from ansible_collections.llmops.bluegreen.plugins.modules import slo_check


class FakePrometheus(HTTPServer):
    """Answers /api/v1/query with the value of the first key of ``answers`` found in the query."""

    def __init__(self):
        HTTPServer.__init__(self, ('127.0.0.1', 0), _Handler)
        self.answers = {}
        self.queries = []
        self.status = 200


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers.get('Content-Length', 0))
        query = parse_qs(self.rfile.read(length).decode())['query'][0]
        self.server.queries.append(query)
        value = next((v for k, v in self.server.answers.items() if k in query), None)
        result = [] if value is None else [{'metric': {}, 'value': [0, value]}]
        body = json.dumps({'status': 'success', 'data': {'resultType': 'vector', 'result': result}})
        if self.server.status != 200:
            body = json.dumps({'status': 'error', 'errorType': 'bad_data', 'error': 'boom'})
        self.send_response(self.server.status)
        self.send_header('Content-Type', 'application/json')
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def prom():
    server = FakePrometheus()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server):
    return 'http://127.0.0.1:%d' % server.server_port


def test_pass_in_check_mode(run_module, prom):
    prom.answers = {'status=~"5..': '0', 'histogram_quantile': '0.8', 'qa_requests_total': '120'}
    failed, result = run_module(slo_check, {'url': url(prom), 'color': 'green', 'window': '2m'}, check_mode=True)
    assert not failed and result['changed'] is False
    assert result['ok'] is True and result['status'] == 'pass' and result['breaches'] == []
    assert (result['requests'], result['errors'], result['error_rate'], result['p99_seconds']) == (120.0, 0.0, 0.0, 0.8)
    assert all('color="green"' in q and '[2m]' in q for q in prom.queries) and len(prom.queries) == 3


def test_error_breach(run_module, prom):
    prom.answers = {'status=~"5..': '30', 'histogram_quantile': '0.8', 'qa_requests_total': '120'}
    failed, result = run_module(slo_check, {'url': url(prom), 'color': 'blue', 'max_error_rate': 0.05})
    assert not failed and not result['changed'] and result['ok'] is False and result['status'] == 'breach'
    assert result['breaches'] == [{'metric': 'error_rate', 'value': 0.25, 'threshold': 0.05}]
    assert result['msg'] == 'SLO breached: error_rate 0.25 > threshold 0.05'


def test_latency_breach(run_module, prom):
    prom.answers = {'status=~"5..': '0', 'histogram_quantile': '42', 'qa_requests_total': '120'}
    failed, result = run_module(slo_check, {'url': url(prom), 'color': 'blue', 'max_p99_seconds': 10})
    assert result['breaches'] == [{'metric': 'p99_seconds', 'value': 42.0, 'threshold': 10.0}]


def test_no_traffic(run_module, prom):
    failed, result = run_module(slo_check, {'url': url(prom), 'color': 'blue'})
    assert not failed and result['ok'] is False and result['status'] == 'not_enough_traffic'
    assert result['requests'] == 0.0 and result['error_rate'] is None and result['p99_seconds'] is None
    assert 'not enough traffic: 0 requests in 5m, at least 20 needed' in result['msg']


def test_prometheus_error_fails(run_module, prom):
    prom.status = 400
    failed, result = run_module(slo_check, {'url': url(prom), 'color': 'blue'})
    assert failed and 'cannot query Prometheus at %s' % url(prom) in result['msg'] and 'boom' in result['msg']


def test_unreachable_prometheus_fails(run_module):
    failed, result = run_module(slo_check, {'url': 'http://127.0.0.1:9', 'color': 'blue', 'timeout': 2})
    assert failed and result['msg'].startswith('cannot query Prometheus at http://127.0.0.1:9')


def test_bad_window_fails_before_asking(run_module, prom):
    failed, result = run_module(slo_check, {'url': url(prom), 'color': 'blue', 'window': 'five'})
    assert failed and 'not a Prometheus duration' in result['msg'] and prom.queries == []
