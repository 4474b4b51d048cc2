# -*- coding: utf-8 -*-
"""X-QA-Color pins a color only for operator keys; everyone else gets the weights.

The service's other color is stood in by a /health responder on the service network
(its own model is not needed to see where nginx routes); upstreams.conf is rendered by
the module's own renderer and restored afterwards.
"""
import json
import os
import pathlib

import pytest

from _gateway_stack import docker, inspect
from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import probe, ssl_context
from ansible_collections.llmops.bluegreen.plugins.module_utils._upstreams import render

RESPONDER_CONF = """\
worker_processes 1;
pid /run/nginx.pid;
error_log /dev/stderr warn;
events { worker_connections 64; }
http {
    access_log off;
    server {
        listen 8000;
        default_type application/json;
        # Prefix: the gateway asks /health/readiness for a request without an operator key.
        location /health { root /srv; try_files /health.json =404; }
        location / { return 404 '{"error":"responder"}'; }
    }
}
"""


@pytest.fixture(scope='module')
def colors(stack, tmp_path_factory):
    """(active, other): the active color as deployed, the other one a responder at weight 0."""
    state = stack.state()
    active = state['active']
    other = 'green' if active == 'blue' else 'blue'
    conf = stack.dir / 'nginx' / 'upstreams.conf'
    before = conf.read_text()
    base = tmp_path_factory.mktemp('responder')
    (base / 'conf').mkdir()
    (base / 'srv').mkdir()
    (base / 'conf' / 'nginx.conf').write_text(RESPONDER_CONF)
    (base / 'srv' / 'health.json').write_text(json.dumps({'status': 'ready', 'color': other}))
    name = '%s-gwtest-%s' % (stack.service, other)
    docker('rm', '-f', name, check=False)
    docker('run', '-d', '--name', name, '--network', stack.network,
           '-v', '%s:/etc/nginx/gateway:ro' % (base / 'conf'), '-v', '%s:/srv:ro' % (base / 'srv'),
           inspect(stack.gateway, '{{.Config.Image}}'))
    upstreams = {active: state['colors'][active]['upstreams'], other: ['%s:8000' % name]}
    try:
        stack.reload_with(render(stack.service, upstreams, {active: 100}))
        yield active, other
    finally:
        stack.reload_with(before)
        docker('rm', '-f', name, check=False)


def operator_keys(stack):
    keys = [stack.operator_key()]
    inventory_key = pathlib.Path(os.path.expanduser('~/.config/llmops/%s/operator_key' % stack.service))
    if inventory_key.exists():
        keys.append(inventory_key.read_text().strip())
    return keys


def bearer(key):
    return {'Authorization': 'Bearer %s' % key}


def test_health_ignores_the_header_without_an_operator_key(stack, colors):
    active, other = colors
    for headers in ({}, bearer(stack.api_key() or 'x' * 40), bearer('not-an-operator-key-0000')):
        for dummy in range(5):
            assert stack.health_color(dict(headers, **{'X-QA-Color': other})) == (200, active, active), headers.keys()


def test_v1_ignores_the_header_without_an_operator_key(stack, colors):
    active, other = colors
    key = stack.api_key()
    headers = bearer(key) if key else {}
    for dummy in range(5):
        status, head, body = stack.request('/v1/models', dict(headers, **{'X-QA-Color': other}))
        assert (status, head.get('x-qa-color')) == (200, active), body[:300]


def test_an_operator_key_pins_a_color(stack, colors):
    active, other = colors
    for key in operator_keys(stack):
        for dummy in range(5):
            assert stack.health_color(dict(bearer(key), **{'X-QA-Color': other})) == (200, other, other)
            assert stack.health_color(dict(bearer(key), **{'X-QA-Color': active})) == (200, active, active)
        assert stack.health_color(bearer(key)) == (200, active, active), 'no header: the weights decide'
        status, head, dummy = stack.request('/v1/models', dict(bearer(key), **{'X-QA-Color': other}))
        assert head.get('x-qa-color') == other, status


def test_probe_pins_with_api_key(stack, colors):
    # What bluegreen_switch's per-color verification sends (verify_api_key).
    active, other = colors
    url = 'https://127.0.0.1:%d/health' % stack.port
    context = ssl_context(True, stack.cacert)
    pinned = probe(url, context=context, headers={'X-QA-Color': other}, api_key=stack.operator_key())
    assert pinned == (200, other, other, None)
    assert probe(url, context=context, headers={'X-QA-Color': other}) == (200, active, active, None)
