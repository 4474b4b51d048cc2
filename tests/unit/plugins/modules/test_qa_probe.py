# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""qa_probe through its main(): over a URL against small local HTTP servers that answer like
qa-api, and (docker marker) inside a real container that dies while the module waits."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import threading
import time
import uuid

import pytest

from ansible.module_utils.six.moves import BaseHTTPServer

from ansible_collections.llmops.bluegreen.plugins.modules import qa_probe

QUESTIONS = [
    {'question': 'Which UDP port does the WireGuard VPN use?', 'expect_source': 'vpn-howto.txt',
     'expect_facts': [['UDP 51820', '51820']], 'language': 'en'},
    {'question': '会议室最多可以提前多少天预订？', 'expect_source': 'office-rules-zh.md',
     'expect_facts': ['14 天'], 'language': 'zh'},
]
GOOD = {'Which UDP port does the WireGuard VPN use?': 'WireGuard uses UDP port 51820.',
        '会议室最多可以提前多少天预订？': '最多可以提前14天预订。'}


class FakeQaApi(object):
    """A loopback HTTP server with qa-api's /health, /metrics and chat; records request headers."""

    def __init__(self, health, answers=None, cache='BYPASS', ready_after=0.0):
        self.health, self.answers, self.cache, self.seen = health, answers or {}, cache, []
        self.ready_at = time.time() + ready_after
        fake = self

        class Handler(BaseHTTPServer.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body, headers=None, content_type='application/json'):
                data = (body if isinstance(body, str) else json.dumps(body)).encode('utf-8')
                self.send_response(status)
                self.send_header('Content-Type', content_type)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == '/health':
                    ready = time.time() >= fake.ready_at
                    self.reply(200, dict(fake.health, status='ready' if ready else 'loading',
                                         detail=None if ready else 'loading the embedding model'))
                elif self.path == '/metrics':
                    self.reply(200, 'qa_cache_hits_total %.1f\n' % (1 if fake.cache == 'HIT' else 0), content_type='text/plain')
                else:
                    self.reply(404, {'error': {'message': 'no such endpoint'}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
                fake.seen.append((dict((k.lower(), v) for k, v in self.headers.items()), body))
                question = body['messages'][-1]['content']
                source = [q['expect_source'] for q in QUESTIONS if q['question'] == question][0]
                text = '%s\n\nSources: %s' % (fake.answers.get(question, 'I do not know.'), source)
                self.reply(200, {'object': 'chat.completion', 'choices': [{'message': {'role': 'assistant', 'content': text}}],
                                 'sources': [{'source': source, 'chunk': 0, 'score': 0.6}]}, {'X-Cache': fake.cache})

        self.server = BaseHTTPServer.HTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


HEALTH = {'color': 'green', 'version': 'v2', 'release': 'r2', 'model': 'smollm2-135m-instruct',
          'kb': {'checksum': 'c2'}, 'error': None}


@pytest.fixture
def servers():
    made = []

    def make(*args, **kwargs):
        made.append(FakeQaApi(*args, **kwargs))
        return made[-1]
    yield make
    for server in made:
        server.close()


def gate_args(url, **extra):
    return dict(dict(mode='gate', url=url, questions=QUESTIONS, label='green', threshold=0.8, margin=0.1), **extra)


def test_wait_until_ready_then_check_expectations(run_module, servers):
    server = servers(HEALTH, ready_after=1.5)
    failed, result = run_module(qa_probe, {'mode': 'wait', 'url': server.url, 'interval': 1, 'timeout': 30,
                                           'expect': {'kb_checksum': 'c2', 'model': 'smollm2-135m-instruct',
                                                      'version': 'v2', 'release': 'r2'}})
    assert not failed and not result['changed'], result
    assert result['report']['status'] == 'ready'
    assert [e['status'] for e in result['timeline']] == ['loading', 'ready']
    assert result['timeline'][0]['detail'] == 'loading the embedding model'


def test_wait_mismatch_fails_at_once_naming_both_values(run_module, servers):
    server = servers(HEALTH)
    started = time.time()
    failed, result = run_module(qa_probe, {'mode': 'wait', 'url': server.url, 'timeout': 600,
                                           'expect': {'kb_checksum': '0' * 64, 'release': 'r2'}})
    assert failed and time.time() - started < 10
    assert 'kb_checksum: expected %s, reported c2' % ('0' * 64) in result['msg']
    assert 'release' not in result['msg']


def test_wait_times_out_naming_the_last_status(run_module, servers):
    server = servers(HEALTH, ready_after=3600)
    failed, result = run_module(qa_probe, {'mode': 'wait', 'url': server.url, 'timeout': 2, 'interval': 1})
    assert failed and 'did not become ready within 2 s' in result['msg'] and 'loading the embedding model' in result['msg']
    assert result['timeline'][0]['status'] == 'loading' and result['report']['status'] == 'loading'


def test_gate_passes_and_asks_without_the_cache(run_module, servers):
    new, old = servers(HEALTH, GOOD), servers(HEALTH, GOOD)
    failed, result = run_module(qa_probe, gate_args(new.url, baseline_url=old.url, baseline_label='blue'))
    assert not failed, result
    assert result['pass_rate'] == 1.0 and result['baseline_pass_rate'] == 1.0 and result['passed']
    assert result['report']['cache_hits'] == 0
    assert len(new.seen) == 2 and len(old.seen) == 2
    for headers, body in new.seen + old.seen:
        assert headers['x-qa-cache'] == 'bypass' and body['temperature'] == 0
    assert [r['source_cited'] for r in result['report']['results']] == [True, True]
    assert len(result['table']) == 5 and 'blue' in result['table'][0]
    assert result['table'][-1].startswith('blue latency: p50 ') and result['report']['latency']['blue']['max'] >= 0


def test_gate_refuses_a_broken_model_naming_both_rates(run_module, servers):
    new = servers(HEALTH, {})  # retrieval still cites the right file; the answer says nothing
    old = servers(HEALTH, GOOD)
    failed, result = run_module(qa_probe, gate_args(new.url, baseline_url=old.url, baseline_label='blue'))
    assert failed
    assert 'green pass rate 0.00' in result['msg'] and 'blue 1.00' in result['msg'] and 'threshold' in result['msg']
    assert result['report']['passed'] is False and len(result['report']['results']) == 2
    assert all(r['source_cited'] for r in result['report']['results'])  # sources alone would have passed


def test_gate_refuses_worse_than_the_active_color_by_more_than_the_margin(run_module, servers):
    half = {QUESTIONS[0]['question']: GOOD[QUESTIONS[0]['question']]}
    new, old = servers(HEALTH, half), servers(HEALTH, GOOD)
    failed, result = run_module(qa_probe, gate_args(new.url, baseline_url=old.url, baseline_label='blue', threshold=0.5))
    assert failed and 'margin 0.10' in result['msg'] and 'green pass rate 0.50' in result['msg'] and 'blue 1.00' in result['msg']
    failed, result = run_module(qa_probe, gate_args(new.url, baseline_url=old.url, threshold=0.5, margin=0.5))
    assert not failed, result


def test_gate_refuses_an_answer_from_the_cache(run_module, servers):
    server = servers(HEALTH, GOOD, cache='HIT')
    failed, result = run_module(qa_probe, gate_args(server.url))
    assert failed and 'from its cache' in result['msg']


def test_bad_question_set_fails_before_asking(run_module, servers):
    server = servers(HEALTH, GOOD)
    failed, result = run_module(qa_probe, gate_args(server.url, questions=[{'question': 'Hm?', 'expect_facts': []}]))
    assert failed and 'expect_facts' in result['msg'] and server.seen == []


# ------------------------------------------------------------------ real container

IMAGE = os.environ.get('LLMOPS_QA_API_IMAGE', 'llmops/qa-api:dev')


@pytest.mark.docker
def test_wait_fails_at_once_when_the_container_dies(run_module):
    from _docker_fixtures import PREFIX, docker_client_with
    client = docker_client_with(IMAGE, 'build images/qa-api or set LLMOPS_QA_API_IMAGE')
    name = '%s-probe-%s' % (PREFIX, uuid.uuid4().hex[:6])
    # Stands in for a qa-api that crashes while loading: alive a few seconds, then exit 3.
    client.containers.run(IMAGE, entrypoint=['sh', '-c', 'echo loading; sleep 6; echo "FATAL: cannot load model" >&2; exit 3'],
                          name=name, detach=True, network_mode='none')
    try:
        started = time.time()
        failed, result = run_module(qa_probe, {'mode': 'wait', 'container': name, 'timeout': 600, 'interval': 1})
        assert failed and time.time() - started < 30, result
        assert 'stopped while waiting' in result['msg'] and 'exit code 3' in result['msg'], result['msg']
        assert 'FATAL: cannot load model' in result['msg']
        assert result['timeline'] and result['timeline'][0]['status'] == 'unreachable'
    finally:
        client.containers.get(name).remove(force=True)


LLM_IMAGE = os.environ.get('LLM_IMAGE', 'llmops/llm-llamacpp:dev')


@pytest.mark.docker
def test_a_keyed_inference_server_is_probed_with_the_key_read_inside_it(run_module, tmp_path):
    """The real llama.cpp image with LLM_API_KEY_FILE: the probe waits with bearer_file; without
    the key it is refused at once; the key shows in no argument, env value or module result."""
    from _docker_fixtures import PREFIX, docker_client_with
    client = docker_client_with(LLM_IMAGE, 'build images/llm-llamacpp or set LLM_IMAGE')
    key = uuid.uuid4().hex
    key_file = tmp_path / 'inference_api_key'
    key_file.write_text(key)
    key_file.chmod(0o644)
    mount = '/run/secrets/inference_api_key'
    name = '%s-llmkey-%s' % (PREFIX, uuid.uuid4().hex[:6])
    client.containers.run(LLM_IMAGE, name=name, detach=True, network_mode='none',
                          environment={'LLM_API_KEY_FILE': mount, 'LLM_THREADS': '1'},
                          volumes={str(key_file): {'bind': mount, 'mode': 'ro'}})
    try:
        failed, result = run_module(qa_probe, {'mode': 'wait', 'endpoint': 'models', 'container': name,
                                               'bearer_file': mount, 'timeout': 300, 'interval': 1,
                                               'expect': {'model': 'smollm2-135m-instruct'}})
        assert not failed, result
        failed, refused = run_module(qa_probe, {'mode': 'wait', 'endpoint': 'models', 'container': name,
                                                'timeout': 300, 'interval': 1})
        assert failed and 'HTTP 401' in refused['msg'] and 'bearer_file' in refused['msg'], refused
        assert refused['elapsed'] < 30, 'a refused key must not be waited on'
        attrs = client.containers.get(name).attrs
        assert key not in json.dumps(attrs['Config']) and key not in ' '.join(attrs['Args'])
        assert key not in json.dumps(result) + json.dumps(refused)
    finally:
        client.containers.get(name).remove(force=True)
