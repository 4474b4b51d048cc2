# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real gateway with two colors on the local docker engine, for bluegreen_switch tests.

- the gateway: the collection's ``gateway`` role run with ansible-playbook
  (image $LLMOPS_GATEWAY_IMAGE, default llmops/gateway:dev), published on free
  loopback ports, on a network the fixture creates;
- the colors: static /health responders (the same image serving a JSON file),
  standing in for qa-api whose model and knowledge base are not needed here.
  ``set_health`` rewrites a color's JSON on the fly (ready, loading, checksum).

Import the fixture into a test module: ``from _docker_fixtures import bluegreen_env``.
Names start with $LLMOPS_TEST_PREFIX (default ``h4-ut``). Skipped, with the
reason, only when the docker engine, the image or ansible-playbook is missing.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid

import pytest

from ansible.module_utils.six.moves import http_client

from ansible_collections.llmops.bluegreen.plugins.module_utils._state import atomic_write
from ansible_collections.llmops.bluegreen.plugins.module_utils._upstreams import BOOTSTRAP

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = os.environ.get('LLMOPS_GATEWAY_IMAGE', 'llmops/gateway:dev')
# A tester key of the gateway: during a canary its requests go to the new color.
TESTER_KEY = 'tester-key-for-the-unit-tests-0001'


def skip_or_fail(reason):
    """Skip when docker or an image is missing, unless the suite requires them (make test does)."""
    if os.environ.get('LLMOPS_REQUIRE_DOCKER') == '1':
        pytest.fail(reason + ' (LLMOPS_REQUIRE_DOCKER=1: the docker tests must run)')
    pytest.skip(reason)


def docker_client_with(image, hint):
    """A docker client whose engine answers and holds ``image``; skip (or fail) naming ``hint`` otherwise."""
    docker = pytest.importorskip('docker', reason='Docker SDK for Python not installed')
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # pylint: disable=broad-except
        skip_or_fail('docker engine not reachable: %s' % exc)
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        skip_or_fail('image %s not present (%s)' % (image, hint))
    return client


PREFIX = os.environ.get('LLMOPS_TEST_PREFIX', 'h4-ut')

RESPONDER_CONF = """\
worker_processes 1;
pid /run/nginx.pid;
error_log /dev/stderr warn;
events { worker_connections 64; }
http {
    access_log off;
    server {
        listen 8000;
        # Prefix: the gateway asks /health/readiness for a request without an operator key.
        # Like a qa-api, every answer names its color: the gateway tells clients who answered.
        add_header X-QA-Color @COLOR@ always;
        # /srv/drop: the connection is closed without an answer (444), a failed request to nginx.
        location /health {
            if (-f /srv/drop) { return 444; }
            default_type application/json; root /srv; try_files /health.json =404;
        }
    }
}
"""


def default_health(color):
    return {'status': 'ready', 'color': color, 'version': '1.0-%s' % color, 'model': 'model-%s' % color,
            'kb': {'version': 'kb-%s' % color, 'checksum': 'sum-%s' % color}, 'error': None}


def free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class BlueGreenEnv(object):
    """Handles on the running gateway, its colors and its state directory."""

    def __init__(self, client, base):
        self.client = client
        self.service = '%s-%s' % (PREFIX, uuid.uuid4().hex[:6])
        # The colors' network, internal like a deployed service's (names: internal_network); the
        # gateway role creates the egress one (<service>-net) for its port holder.
        self.network = '%s-internal' % self.service
        self.networks = [self.network, '%s-net' % self.service]
        self.gateway = '%s-gateway' % self.service
        self.state_dir = os.path.join(base, 'state')
        self.dir = os.path.join(self.state_dir, self.service)
        self.base = base
        self.https_port = free_port()
        self.http_port = free_port()
        self.url = 'https://127.0.0.1:%d/health' % self.https_port
        self.upstreams = dict((color, ['%s-qa-%s:8000' % (self.service, color)]) for color in ('blue', 'green'))
        self.conf = os.path.join(self.dir, 'nginx', 'upstreams.conf')
        self.containers = []

    # -- setup / teardown ----------------------------------------------
    def start(self):
        self.client.networks.create(self.network, driver='bridge', internal=True)
        for color in ('blue', 'green'):
            root = os.path.join(self.base, color)
            os.makedirs(os.path.join(root, 'conf'))
            os.makedirs(os.path.join(root, 'srv'))
            with open(os.path.join(root, 'conf', 'nginx.conf'), 'w') as handle:
                handle.write(RESPONDER_CONF.replace('@COLOR@', color))
            self.set_health(color)
            self.containers.append(self.client.containers.run(
                IMAGE, name='%s-qa-%s' % (self.service, color), detach=True, network=self.network,
                volumes={os.path.join(root, 'conf'): {'bind': '/etc/nginx/gateway', 'mode': 'ro'},
                         os.path.join(root, 'srv'): {'bind': '/srv', 'mode': 'ro'}}))
        self.run_gateway_role()
        self.containers.append(self.client.containers.get(self.gateway))

    def run_gateway_role(self):
        inventory = os.path.join(self.base, 'inventory.yml')
        playbook = os.path.join(self.base, 'gateway.yml')
        with open(inventory, 'w') as handle:
            json.dump({'all': {'hosts': {'localhost': {
                'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}},
                'children': {'llmops_gateway': {'hosts': {'localhost': {}}}},
                'vars': {'llmops_service': self.service, 'llmops_state_dir': self.state_dir,
                         'llmops_bind_address': '127.0.0.1', 'llmops_https_port': self.https_port,
                         'llmops_http_port': self.http_port, 'gateway_image': IMAGE,
                         'gateway_worker_shutdown_timeout': 5, 'gateway_tester_keys': [TESTER_KEY]}}}, handle)
        with open(playbook, 'w') as handle:
            handle.write('- name: Gateway for tests\n  hosts: all\n  gather_facts: false\n'
                         '  roles:\n    - llmops.bluegreen.gateway\n')
        self.inventory = inventory
        returncode, output = self.playbook(playbook)
        if returncode != 0:
            raise AssertionError('gateway role failed:\n%s' % output[-4000:])

    def playbook(self, playbook, *extra):
        """Run a playbook against this environment; returns ``(returncode, output)``.

        The output's whitespace is collapsed: the callback wraps long messages anywhere.
        """
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'))
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
                               '-i', self.inventory, playbook] + list(extra), cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600, check=False)
        return proc.returncode, ' '.join(proc.stdout.decode('utf-8', 'replace').split())

    def stop(self):
        # Also what the gateway role made (the port holder, replaced gateways): all carry the service label.
        labelled = self.client.containers.list(all=True, filters={'label': 'llmops.service=%s' % self.service})
        for container in self.containers + labelled:
            try:
                container.remove(force=True)
            except Exception:  # pylint: disable=broad-except
                pass
        for network in self.networks:
            try:
                self.client.networks.get(network).remove()
            except Exception:  # pylint: disable=broad-except
                pass

    # -- helpers for tests -----------------------------------------------
    def set_health(self, which, **changes):
        """Rewrite the /health JSON of color ``which`` (``changes`` override default fields)."""
        health = default_health(which)
        health.update(changes)
        atomic_write(os.path.join(self.base, which, 'srv', 'health.json'), json.dumps(health))

    def drop(self, which, on=True):
        """Color ``which`` closes every /health connection without an answer (``on``), or answers again."""
        path = os.path.join(self.base, which, 'srv', 'drop')
        if on:
            open(path, 'w').close()
        elif os.path.exists(path):
            os.unlink(path)

    def reset(self):
        """No state, no lock, bootstrap config, both colors ready."""
        for name in ('state.json', 'audit.log', 'lock'):
            if os.path.exists(os.path.join(self.dir, name)):
                os.unlink(os.path.join(self.dir, name))
        if os.path.exists(self.conf + '.bak'):
            os.unlink(self.conf + '.bak')
        atomic_write(self.conf, BOOTSTRAP)
        old_workers = self.worker_pids()
        self.exec(['nginx', '-s', 'reload'])
        for color in ('blue', 'green'):
            self.set_health(color)
            self.drop(color, on=False)
        # Until the old workers have exited, one of them may still accept a new connection and
        # answer with the previous config: a test's first probe must see only the bootstrap one.
        deadline = time.time() + 15
        while self.worker_pids() & old_workers or self.probe()[0] != 503:
            assert time.time() < deadline, 'gateway did not return to color none'
            time.sleep(0.05)

    def exec(self, cmd):
        rc, out = self.client.containers.get(self.gateway).exec_run(cmd)
        assert rc == 0, out
        return out.decode('utf-8', 'replace')

    def worker_pids(self):
        """PIDs of the nginx worker processes: new ones after every reload."""
        # stderr off: a short-lived process (the upstream watcher's) can vanish between glob and read.
        out = self.exec(['sh', '-c', 'exec 2>/dev/null; for p in /proc/[0-9]*; do '
                         'case "$(tr "\\0" " " < $p/cmdline 2>/dev/null)" in '
                         '"nginx: worker process"*) echo ${p#/proc/};; esac; done'])
        return set(out.split())

    def probe(self, headers=None, timeout=5):
        """One request through the gateway on a new connection: (status, X-QA-Color, body color)."""
        context = ssl._create_unverified_context()  # self-signed test certificate
        conn = http_client.HTTPSConnection('127.0.0.1', self.https_port, timeout=timeout, context=context)
        try:
            conn.request('GET', '/health', headers=headers or {})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        try:
            color = json.loads(body.decode('utf-8')).get('color')
        except ValueError:
            color = None
        return response.status, response.getheader('X-QA-Color'), color

    def colors_seen(self, count, headers=None):
        seen = {}
        for dummy in range(count):
            status, header, color = self.probe(headers)
            assert status == 200 and header == color, (status, header, color)
            seen[color] = seen.get(color, 0) + 1
        return seen

    def switch_args(self, **extra):
        args = {'service': self.service, 'state_dir': self.state_dir, 'upstreams': self.upstreams,
                'gateway_container': self.gateway, 'verify_url': self.url, 'validate_certs': False,
                'health_timeout': 10, 'verify_timeout': 10}
        args.update(extra)
        return args

    def operator_key(self):
        """The operator key the gateway role made on the host: only it lets X-QA-Color pin a color."""
        with open(os.path.join(self.dir, 'gateway', 'operator.key')) as handle:
            return handle.read().strip()

    def read(self, name):
        path = os.path.join(self.dir, name)
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            return handle.read()

    def audit(self):
        text = self.read('audit.log') or ''
        return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope='session')
def bluegreen_env(tmp_path_factory):
    client = docker_client_with(IMAGE, 'docker build -t %s images/gateway, or set LLMOPS_GATEWAY_IMAGE' % IMAGE)
    if not os.path.exists(os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')):
        pytest.skip('ansible-playbook not installed next to %s (needed to run the gateway role)' % sys.executable)
    env = BlueGreenEnv(client, str(tmp_path_factory.mktemp('bluegreen')))
    try:
        env.start()
        yield env
    finally:
        env.stop()
        shutil.rmtree(env.base, ignore_errors=True)
