# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""No egress from the internal network (issue 9), on real Docker networks this test creates.

The networks are made as the collection makes them (bridge, ``internal: true`` for the
colors' one) and containers are attached as ``llmops.bluegreen.container_networks`` says.
A listener runs outside both, on an ordinary network of its own, published on the host's
address on the egress network: reaching it goes through the host's routing and NAT, the way
out to an external provider goes (a container's direct traffic to another bridge is dropped
by Docker for any network, so it would prove nothing). A container on the internal network
alone cannot connect to it, one on both networks can, and the members of the internal
network find each other by name. Everything created starts with ``inet-test-``; traffic
stays on the networks the test creates, every wait is bounded.
"""
import os
import socket
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'monitoring'))

from _monitor import image  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.llmops.bluegreen.plugins.module_utils._names import (  # noqa: E402  pylint: disable=wrong-import-position
    container_networks, names)

pytestmark = pytest.mark.docker

PREFIX = 'inet-test-%s' % uuid.uuid4().hex[:6]
PORT = 8080
# Python of the qa-api image: a listener, and a client that exits 0 only when it connected.
LISTEN = 'import http.server as s; s.HTTPServer(("", %d), s.SimpleHTTPRequestHandler).serve_forever()' % PORT
CONNECT = ('import socket, sys\n'
           'try:\n'
           '    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n'
           'except OSError as exc:\n'
           '    print(type(exc).__name__, exc); sys.exit(1)\n'
           'print("connected")\n')


def docker(*args, check=True):
    proc = subprocess.run(['docker'] + list(args), capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise AssertionError('docker %s: %s' % (' '.join(args), proc.stderr.strip()))
    return proc


def run(name, qa_image, attach, *command):
    """A container attached like docker_container does it: created on network_mode, then connected."""
    dns = [arg for opt in attach.get('dns_opts') or [] for arg in ('--dns-opt', opt)]
    docker('run', '-d', '--name', name, '--network', attach['network_mode'], *dns, '--cap-drop', 'ALL',
           '--security-opt', 'no-new-privileges', '--memory', '128m', '--entrypoint', 'python', qa_image, *command)
    for network in attach['networks'][1:]:
        docker('network', 'connect', network['name'], name)


def connects(client, target, port=PORT):
    proc = docker('exec', client, 'python', '-c', CONNECT, target, str(port), check=False)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def nets():
    qa_image = image('LLMOPS_QA_API_IMAGE', 'llmops/qa-api')
    service = names(PREFIX)
    egress, internal = service['network'], service['internal_network']
    made = {'egress': egress, 'internal': internal, 'outside': PREFIX + '-outside', 'image': qa_image}
    try:
        docker('network', 'create', '--driver', 'bridge', egress)
        docker('network', 'create', '--driver', 'bridge', '--internal', internal)
        # The listener outside: its own ordinary network, published on the host's address on the
        # egress network (the test's own bridge), so only routing through the host reaches it.
        docker('network', 'create', '--driver', 'bridge', made['outside'])
        made['host'] = docker('network', 'inspect', '-f', '{{(index .IPAM.Config 0).Gateway}}', egress).stdout.strip()
        made['port'] = free_port()
        docker('run', '-d', '--name', PREFIX + '-listener', '--network', made['outside'], '--cap-drop', 'ALL',
               '--memory', '128m', '-p', '%s:%d:%d' % (made['host'], made['port'], PORT), '--entrypoint', 'python',
               qa_image, '-c', LISTEN)
        run(PREFIX + '-peer', qa_image, container_networks(internal), '-c', LISTEN)
        run(PREFIX + '-internal', qa_image, container_networks(internal), '-c', 'import time; time.sleep(600)')
        run(PREFIX + '-both', qa_image, container_networks(internal, egress), '-c', 'import time; time.sleep(600)')
        run(PREFIX + '-old', qa_image, {'network_mode': egress, 'networks': [{'name': egress}]},
            '-c', 'import time; time.sleep(600)')
        yield made
    finally:
        found = docker('ps', '-aq', '--filter', 'name=' + PREFIX, check=False).stdout.split()
        if found:
            docker('rm', '-f', *found, check=False)
        docker('network', 'rm', egress, internal, made['outside'], check=False)


def test_the_internal_network_has_no_egress(nets):
    assert docker('network', 'inspect', '-f', '{{.Internal}}', nets['internal']).stdout.strip() == 'true'
    # The listener answers through the host (so a refusal below is the network's doing).
    ok, out = connects(PREFIX + '-both', nets['host'], nets['port'])
    assert ok, out
    ok, out = connects(PREFIX + '-internal', nets['host'], nets['port'])
    assert not ok, 'a container on the internal network reached %s:%d: %s' % (nets['host'], nets['port'], out)


def test_a_container_on_both_networks_reaches_out_and_in(nets):
    ok, out = connects(PREFIX + '-both', nets['host'], nets['port'])
    assert ok, out
    ok, out = connects(PREFIX + '-both', PREFIX + '-peer')
    assert ok, out


def test_members_of_the_internal_network_find_each_other_by_name(nets):
    ok, out = connects(PREFIX + '-internal', PREFIX + '-peer')
    assert ok, out
    ok, out = connects(PREFIX + '-peer', PREFIX + '-both')
    assert 'gaierror' not in out, out
    # ... but not the names of containers outside it, and such a name fails as unknown (the
    # dns_opts of container_networks), not as a lookup timed out towards resolvers it cannot reach
    # (EAI_AGAIN, "Temporary failure in name resolution", after 10 s without them).
    ok, out = connects(PREFIX + '-internal', PREFIX + '-listener')
    assert not ok and 'gaierror' in out and 'Temporary failure' not in out, out


def test_a_running_container_joins_the_internal_network_without_a_restart(nets):
    """What docker_host does for a color deployed before the internal network."""
    name = PREFIX + '-old'
    ok, out = connects(name, PREFIX + '-peer')
    assert not ok, out
    started = docker('inspect', '-f', '{{.State.StartedAt}}', name).stdout
    docker('network', 'connect', nets['internal'], name)
    ok, out = connects(name, PREFIX + '-peer')
    assert ok, out
    assert docker('inspect', '-f', '{{.State.StartedAt}}', name).stdout == started
