# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real gateway (the collection's role, hardened container) in front of a stand-in color.

The color is the gateway image serving what qa-api would (full /health, /health/readiness,
/v1/models, an ``X-Cache`` header, and the ``X-QA-Cache`` it received), so the gateway's
own behaviour is tested in seconds without a model. Everything is published on free
loopback ports and named ``$LLMOPS_TEST_PREFIX-sec-<random>``; ``stop`` removes it.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, 'collections')
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.llmops.bluegreen.plugins.module_utils._upstreams import render  # noqa: E402

PREFIX = os.environ.get('LLMOPS_TEST_PREFIX', 'h4-ut')
IMAGE = os.environ.get('LLMOPS_GATEWAY_IMAGE', 'llmops/gateway:dev')

# qa-api's stage timings as it sends them (qa_api.tracing): the gateway logs, never forwards them.
STAGES = 'cache;dur=0.4, retrieval;dur=12.5, prompt;dur=1.0, generation;dur=300.0'
# What the stand-in color answers; /health carries the internal details a client must not see.
COLOR_CONF = """\
worker_processes 1;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;
events { worker_connections 64; }
http {
    access_log off;
    default_type application/json;
    server {
        listen 8000;
        add_header X-QA-Color %(color)s always;
        add_header X-Cache MISS always;
        add_header X-Seen-QA-Cache "$http_x_qa_cache" always;
        add_header Server-Timing "%(timing)s" always;
        location = /health {
            return 200 '{"status":"ready","color":"%(color)s","kb":{"path":"/srv/kb/secret-internal"},"llm":"http://internal-llm/v1"}';
        }
        location = /health/readiness { return 200 '{"ready":true,"status":"ready"}'; }
        location /v1/ { return 200 '{"object":"list","data":[{"id":"m","object":"model"}]}'; }
    }
}
"""


def free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def docker(*args, check=True, timeout=120):
    proc = subprocess.run(['docker'] + list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError('docker %s: %s' % (' '.join(args), proc.stderr.strip()))
    return proc.stdout.strip()


class SecGateway(object):
    """The gateway role run with test limits and two API keys; ``start``/``stop``."""

    # Small limits so that a test reaches them quickly.
    LIMITS = {'gateway_key_rate_limit_rps': 2, 'gateway_key_rate_limit_burst': 4, 'gateway_key_concurrency': 2,
              'gateway_rate_limit_rps': 2, 'gateway_rate_limit_burst': 4, 'gateway_address_concurrency': 0,
              'gateway_client_max_body_size': '64k'}

    def __init__(self, base):
        self.base = base
        self.service = '%s-sec-%s' % (PREFIX, uuid.uuid4().hex[:6])
        # The stand-in color's network, internal like a deployed service's; the gateway role
        # creates the egress one (<service>-net) for its port holder.
        self.network = '%s-internal' % self.service
        self.gateway = '%s-gateway' % self.service
        self.color = '%s-qa-blue' % self.service
        self.state_dir = os.path.join(base, 'state')
        self.dir = os.path.join(self.state_dir, self.service)
        self.https_port = free_port()
        self.http_port = free_port()
        self.keys = ['key%s%s' % (name, uuid.uuid4().hex) for name in 'ABC']
        self.cacert = os.path.join(self.dir, 'gateway', 'tls', 'gateway.crt')

    def start(self):
        docker('network', 'create', '--internal', self.network)
        conf = os.path.join(self.base, 'color')
        os.makedirs(conf)
        with open(os.path.join(conf, 'nginx.conf'), 'w') as handle:
            handle.write(COLOR_CONF % {'color': 'blue', 'timing': STAGES})
        docker('run', '-d', '--name', self.color, '--network', self.network, '--label',
               'llmops.service=%s' % self.service, '-v', '%s:/etc/nginx/gateway:ro' % conf, IMAGE)
        self.run_role()
        # Route to the stand-in like bluegreen_switch does: atomic file, nginx -t, reload.
        path = os.path.join(self.dir, 'nginx', 'upstreams.conf')
        with open(path + '.tmp', 'w') as handle:
            handle.write(render(self.service, {'blue': ['%s:8000' % self.color]}, {'blue': 100}))
        os.replace(path + '.tmp', path)
        docker('exec', self.gateway, 'nginx', '-t')
        docker('exec', self.gateway, 'nginx', '-s', 'reload')
        time.sleep(1)

    def run_role(self):
        inventory = os.path.join(self.base, 'inventory.json')
        playbook = os.path.join(self.base, 'gateway.yml')
        variables = dict(self.LIMITS, llmops_service=self.service, llmops_state_dir=self.state_dir,
                         llmops_bind_address='127.0.0.1', llmops_https_port=self.https_port,
                         llmops_http_port=self.http_port, gateway_image=IMAGE, gateway_api_keys=self.keys,
                         gateway_worker_shutdown_timeout=5, gateway_upstream_watch_interval=0)
        with open(inventory, 'w') as handle:
            json.dump({'all': {'hosts': {'localhost': {'ansible_connection': 'local',
                                                       'ansible_python_interpreter': sys.executable}},
                               'vars': variables}}, handle)
        with open(playbook, 'w') as handle:
            handle.write('- name: Gateway for the security tests\n  hosts: all\n  gather_facts: false\n'
                         '  roles:\n    - llmops.bluegreen.gateway\n')
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory,
                               playbook], cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise AssertionError('gateway role failed:\n%s\n%s' % (proc.stdout[-4000:], proc.stderr[-2000:]))

    def operator_key(self):
        with open(os.path.join(self.dir, 'gateway', 'operator.key')) as handle:
            return handle.read().strip()

    def stop(self):
        names = docker('ps', '-a', '--filter', 'label=llmops.service=%s' % self.service, '--format', '{{.Names}}',
                       check=False).split()
        # The nginx containers before the port holder whose namespace they use.
        for name in sorted(set(names + [self.color, self.gateway]), key=lambda n: n.endswith('-net')):
            docker('rm', '-f', name, check=False)
        docker('network', 'rm', self.network, '%s-net' % self.service, check=False)
        shutil.rmtree(self.base, ignore_errors=True)
