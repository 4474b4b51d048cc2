# -*- coding: utf-8 -*-
"""Handles on a deployed service for the gateway tests: docker, ansible, HTTPS requests.

Traffic goes only to 127.0.0.1 (the published port) and to containers on the
service's own network; every loop is bounded in count and time.
"""
import http.client
import json
import os
import pathlib
import ssl
import subprocess
import time

REPO = pathlib.Path(__file__).resolve().parents[2]


def docker(*args, check=True, timeout=120):
    proc = subprocess.run(['docker'] + list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError('docker %s: %s' % (' '.join(args), proc.stderr.strip()))
    return proc.stdout.strip()


def inspect(name, template):
    return docker('inspect', '-f', template, name)


class Stack:
    def __init__(self, service, port, inventory):
        self.service = service
        self.port = port
        self.inventory = str(inventory)
        self.dir = pathlib.Path('/var/lib/llmops') / service
        self.gateway = '%s-gateway' % service
        self.holder = '%s-gateway-net' % service
        # The colors' network (internal, no egress; names: internal_network).
        self.network = '%s-internal' % service
        self.cacert = str(self.dir / 'gateway' / 'tls' / 'gateway.crt')
        self.context = ssl.create_default_context(cafile=self.cacert)

    # -- secrets of the deployed service --------------------------------------
    def api_key(self):
        path = pathlib.Path(os.path.expanduser('~/.config/llmops/%s/api_key' % self.service))
        return path.read_text().strip() if path.exists() else None

    def operator_key(self):
        """The key the gateway role generates on the host: always an operator key."""
        return (self.dir / 'gateway' / 'operator.key').read_text().strip()

    def state(self):
        return json.loads((self.dir / 'state.json').read_text())

    # -- requests through the gateway -------------------------------------------
    def request(self, path, headers=None, method='GET', body=None, timeout=30):
        """One request on a new connection: (status, headers dict lower-case, body text)."""
        conn = http.client.HTTPSConnection('127.0.0.1', self.port, timeout=timeout, context=self.context)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}, Connection='close'))
            response = conn.getresponse()
            data = response.read().decode('utf-8', 'replace')
            return response.status, dict((k.lower(), v) for k, v in response.getheaders()), data
        finally:
            conn.close()

    def health_color(self, headers=None):
        status, head, body = self.request('/health', headers)
        try:
            color = json.loads(body).get('color')
        except ValueError:
            color = None
        return status, head.get('x-qa-color'), color

    # -- ansible ----------------------------------------------------------------
    def playbook(self, playbook, extra=None, timeout=600):
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
        args = [str(REPO / '.venv' / 'bin' / 'ansible-playbook'), '-i', self.inventory, str(playbook)]
        if extra:
            args += ['-e', json.dumps(extra)]
        return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def gateway_role(self, image, **extra):
        proc = self.playbook(REPO / 'tests' / 'gateway' / 'gateway.yml', dict(extra, gateway_image=image))
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        return proc

    # -- the nginx inside the gateway ---------------------------------------------
    def reload_with(self, text):
        """Install an upstreams.conf like bluegreen_switch does: atomic write, nginx -t, reload."""
        conf = self.dir / 'nginx' / 'upstreams.conf'
        tmp = conf.with_name('.upstreams.conf.gwtest')
        tmp.write_text(text)
        os.replace(tmp, conf)
        docker('exec', self.gateway, 'nginx', '-t')
        docker('exec', self.gateway, 'nginx', '-s', 'reload')
        time.sleep(1)  # old workers stop accepting; the new ones serve


def logs(name, since=None):
    """stdout and stderr of a container (nginx and the watcher log to both)."""
    args = ['docker', 'logs'] + (['--since', str(int(since))] if since else []) + [name]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout + proc.stderr
