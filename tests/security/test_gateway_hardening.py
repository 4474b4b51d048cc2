# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway against hostile or careless clients (issue 9): TLS, plain HTTP, nginx's own
errors, per-key limits, what a client without an operator key may see.

Runs against a gateway of its own (fixture ``secgw``: the role's real, hardened container
with small limits and three API keys); all traffic goes to 127.0.0.1.
"""
import http.client
import json
import socket
import ssl
import time

import pytest

from _secgw import STAGES, docker

# TLS 1.0/1.1 are deprecated in Python's ssl too: offering them is the point here.
pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings('ignore::DeprecationWarning')]


def tls_context(secgw, version=None, ciphers=None):
    context = ssl.create_default_context(cafile=secgw.cacert)
    context.check_hostname = False
    if version is not None:
        context.minimum_version = version
        context.maximum_version = version
    if ciphers:
        context.set_ciphers(ciphers)
    return context


def request(secgw, path, method='GET', headers=None, body=None, context=None):
    """One request on a new HTTPS connection: (status, lower-case headers, body text)."""
    conn = http.client.HTTPSConnection('127.0.0.1', secgw.https_port, timeout=10,
                                       context=context or tls_context(secgw))
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}, Connection='close'))
        response = conn.getresponse()
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), \
            response.read().decode('utf-8', 'replace')
    finally:
        conn.close()


def bearer(key):
    return {'Authorization': 'Bearer %s' % key}


def assert_openai_error(status, head, body, expected_status, code=None):
    assert status == expected_status, (status, body[:300])
    assert head.get('content-type', '').startswith('application/json'), head
    error = json.loads(body)['error']
    assert set(error) == {'message', 'type', 'param', 'code'}, error
    assert error['message'] and error['type'], error
    if code:
        assert error['code'] == code, error
    return error


def handshake(secgw, context):
    """The negotiated (version, cipher) or the SSLError of a handshake with the gateway."""
    with socket.create_connection(('127.0.0.1', secgw.https_port), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname='localhost') as tls:
            return tls.version(), tls.cipher()[0]


# -- TLS ---------------------------------------------------------------------------
@pytest.mark.parametrize('version', [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_legacy_tls_versions_are_refused_by_the_server(secgw, version):
    # SECLEVEL=0 lets this client offer the old version: the refusal must be the server's alert.
    context = tls_context(secgw, version, 'DEFAULT:@SECLEVEL=0')
    with pytest.raises(ssl.SSLError) as exc:
        handshake(secgw, context)
    assert 'PROTOCOL_VERSION' in str(exc.value).upper().replace(' ', '_'), exc.value


def test_cbc_sha1_suites_are_refused(secgw):
    cbc_sha1 = 'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:@SECLEVEL=0'
    with pytest.raises(ssl.SSLError) as exc:
        handshake(secgw, tls_context(secgw, ssl.TLSVersion.TLSv1_2, cbc_sha1))
    assert 'HANDSHAKE_FAILURE' in str(exc.value).upper().replace(' ', '_'), exc.value


def test_tls12_gcm_is_accepted_and_https_answers_carry_hsts(secgw):
    gcm = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256'
    context = tls_context(secgw, ssl.TLSVersion.TLSv1_2, gcm)
    assert handshake(secgw, context)[0] == 'TLSv1.2'
    assert 'GCM' in handshake(secgw, context)[1]
    status, head, dummy = request(secgw, '/health', context=context)
    assert status == 200
    assert head.get('strict-transport-security', '').startswith('max-age='), head
    assert int(head['strict-transport-security'].split('=')[1].split(';')[0]) >= 86400 * 180


# -- plain HTTP --------------------------------------------------------------------
def test_plain_http_refuses_api_requests_instead_of_redirecting(secgw):
    for method, path in (('GET', '/v1/models'), ('POST', '/v1/chat/completions'), ('GET', '/health')):
        conn = http.client.HTTPConnection('127.0.0.1', secgw.http_port, timeout=10)
        try:
            conn.request(method, path, body='{}' if method == 'POST' else None, headers=bearer(secgw.keys[0]))
            response = conn.getresponse()
            head = dict((k.lower(), v) for k, v in response.getheaders())
            error = assert_openai_error(response.status, head, response.read().decode(), 403, 'https_required')
        finally:
            conn.close()
        assert 'location' not in head and 'https' in error['message'], (path, head)
    conn = http.client.HTTPConnection('127.0.0.1', secgw.http_port, timeout=10)
    try:
        conn.request('GET', '/')
        response = conn.getresponse()
        assert response.status == 301 and response.getheader('Location').startswith('https://')
    finally:
        conn.close()


# -- nginx's own errors -------------------------------------------------------------
def test_nginx_errors_are_openai_shaped_json(secgw):
    key = bearer(secgw.keys[0])
    assert_openai_error(*request(secgw, '/nothing/here.html'), expected_status=404, code='not_found')
    assert_openai_error(*request(secgw, '/health', method='DELETE'), expected_status=405)
    assert_openai_error(*request(secgw, '/health', method='XJUNKMETHOD'), expected_status=405)
    assert_openai_error(*request(secgw, '/v1/models', method='PROPFIND', headers=key), expected_status=405)
    assert_openai_error(*request(secgw, '/v1/chat/completions', method='POST', headers=key, body=b'x' * 200000),
                        expected_status=413, code='request_too_large')
    assert_openai_error(*request(secgw, '/v1/' + 'a' * 40000, headers=key), expected_status=414)
    assert_openai_error(*request(secgw, '/v1/models', headers=dict(key, **{'X-Big': 'b' * 40000})),
                        expected_status=400, code='headers_too_large')
    status, head, body = request(secgw, '/v1/models')
    assert_openai_error(status, head, body, 401, 'invalid_api_key')
    assert head.get('www-authenticate', '').startswith('Bearer'), head


def test_malformed_http_is_a_json_400(secgw):
    raw = b'GET /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'
    with socket.create_connection(('127.0.0.1', secgw.https_port), timeout=10) as sock:
        with tls_context(secgw).wrap_socket(sock, server_hostname='localhost') as tls:
            tls.sendall(raw)
            data = b''
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, dummy, body = data.decode('utf-8', 'replace').partition('\r\n\r\n')
    assert head.startswith('HTTP/1.1 400'), head
    assert 'application/json' in head.lower()
    assert set(json.loads(body)['error']) == {'message', 'type', 'param', 'code'}


# -- what a client sees -------------------------------------------------------------
def test_health_without_an_operator_key_is_status_and_color_only(secgw):
    for headers in ({}, bearer(secgw.keys[1])):
        status, head, body = request(secgw, '/health', headers=headers)
        health = json.loads(body)
        assert status == 200 and health['status'] == 'ready' and health['color'] == head['x-qa-color'] == 'blue'
        assert set(health) <= {'status', 'color', 'ready'}, health
        assert 'internal' not in body, body
    status, head, body = request(secgw, '/health', headers=bearer(secgw.operator_key()))
    assert status == 200 and json.loads(body)['kb']['path'].endswith('secret-internal')


def test_access_log_keeps_no_query_string_body_or_key_and_logs_the_stages(secgw):
    secret_query = 'api_key=sk-leak%s&patient=Zhang+San' % secgw.keys[2][-8:]
    body = json.dumps({'model': 'x', 'messages': [{'role': 'user', 'content': 'ID 110101199003077777'}]})
    request(secgw, '/v1/models?' + secret_query, headers=bearer(secgw.keys[1]))
    status, head, dummy = request(secgw, '/v1/chat/completions?' + secret_query, method='POST', body=body,
                                  headers=dict(bearer(secgw.keys[1]), **{'Content-Type': 'application/json'}))
    # The color's stage timings are for the log: a lone "cache" stage would tell a client a hit.
    assert status == 200 and 'server-timing' not in head, head
    time.sleep(1)
    logs = docker('logs', secgw.gateway)
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith('{') and '"path"' in line]
    paths = [line['path'] for line in lines]
    assert '/v1/models' in paths and '/v1/chat/completions' in paths, paths
    for leaked in ('sk-leak', 'Zhang', '110101199003077777', secgw.keys[1], secgw.keys[2]):
        assert leaked not in logs, leaked
    chat = [line for line in lines if line['path'] == '/v1/chat/completions'][-1]
    assert chat['stages'] == STAGES and chat['request_id'] == head['x-request-id'], chat


def test_cache_headers_are_for_operators_only(secgw):
    status, head, dummy = request(secgw, '/v1/models', headers=dict(bearer(secgw.keys[1]), **{'X-QA-Cache': 'bypass'}))
    assert status == 200 and 'x-cache' not in head, head
    assert 'x-seen-qa-cache' not in head, 'a client without an operator key made the color bypass its cache'
    status, head, dummy = request(secgw, '/v1/models',
                                  headers=dict(bearer(secgw.operator_key()), **{'X-QA-Cache': 'bypass'}))
    assert status == 200 and head.get('x-cache') == 'MISS' and head.get('x-seen-qa-cache') == 'bypass', head


# -- limits -------------------------------------------------------------------------
def statuses(secgw, count, headers):
    return [request(secgw, '/v1/models', headers=headers) for dummy in range(count)]


def test_per_key_rate_limit_leaves_other_keys_alone(secgw):
    answers = statuses(secgw, 12, bearer(secgw.keys[0]))
    limited = [a for a in answers if a[0] == 429]
    assert limited and [a[0] for a in answers[:4]] == [200] * 4, [a[0] for a in answers]
    status, head, body = limited[0]
    assert_openai_error(status, head, body, 429, 'rate_limit_exceeded')
    assert int(head['retry-after']) >= 1
    assert [a[0] for a in statuses(secgw, 3, bearer(secgw.keys[1]))] == [200] * 3
    time.sleep(3)
    assert request(secgw, '/v1/models', headers=bearer(secgw.keys[0]))[0] == 200, 'the key did not recover'


def test_unauthenticated_requests_are_limited_per_address_before_their_401(secgw):
    answers = [a[0] for a in statuses(secgw, 12, {})]
    assert set(answers) == {401, 429} and answers[0] == 401, answers
    time.sleep(3)


def hold(secgw, key):
    """A request that holds a slot: headers sent, body never finished."""
    sock = socket.create_connection(('127.0.0.1', secgw.https_port), timeout=10)
    tls = tls_context(secgw).wrap_socket(sock, server_hostname='localhost')
    tls.sendall(('POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n'
                 'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{' % key).encode())
    return tls


def test_per_key_concurrency_limit_leaves_other_keys_alone(secgw):
    key = secgw.keys[2]
    held = [hold(secgw, key) for dummy in range(2)]
    try:
        time.sleep(0.5)
        status, head, body = request(secgw, '/v1/models', headers=bearer(key))
        assert_openai_error(status, head, body, 429, 'rate_limit_exceeded')
        assert head.get('retry-after') == '1'
        assert request(secgw, '/v1/models', headers=bearer(secgw.keys[1]))[0] == 200
    finally:
        for tls in held:
            tls.close()
    time.sleep(1.5)
    assert request(secgw, '/v1/models', headers=bearer(key))[0] == 200, 'slots not released'


# -- the container ------------------------------------------------------------------
def test_gateway_container_is_hardened_and_workers_are_unprivileged(secgw):
    host = json.loads(docker('inspect', '-f', '{{json .HostConfig}}', secgw.gateway))
    assert host['ReadonlyRootfs'] is True and host['CapDrop'] == ['ALL'], host
    assert sorted(host['CapAdd']) == ['CHOWN', 'NET_BIND_SERVICE', 'SETGID', 'SETUID'], host['CapAdd']
    assert 'no-new-privileges:true' in host['SecurityOpt'] and host['Memory'] > 0 and host['PidsLimit'] > 0
    users = docker('exec', secgw.gateway, 'sh', '-c',
                   'exec 2>/dev/null; for p in /proc/[0-9]*; do case "$(tr "\\0" " " < $p/cmdline)" in '
                   '"nginx: worker process"*) stat -c %U $p;; esac; done')
    assert users and set(users.split()) == {'www-data'}, users
