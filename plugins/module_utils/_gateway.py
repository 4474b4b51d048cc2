# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Talk to the gateway: ``docker exec`` into its container, and requests through it.

Health checks of upstreams run ``curl`` INSIDE the gateway container, so they
use exactly the gateway's network view (DNS names on the service network).
Verification requests go through the published port, each on a new
connection, as a client would see the switch.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import ssl
import time
import traceback

from ansible.module_utils.six.moves import http_client
from ansible.module_utils.six.moves.urllib.parse import urlparse

DOCKER_IMPORT_ERROR = None
try:
    import docker
    from docker.errors import DockerException, NotFound
except ImportError:
    DOCKER_IMPORT_ERROR = traceback.format_exc()
    HAS_DOCKER = False
else:
    HAS_DOCKER = True


# One line per process in the container: "<pid> <cmdline with spaces>".
WORKERS_SCRIPT = ('for d in /proc/[0-9]*; do printf "%s " "${d#/proc/}"; '
                  'tr "\\0" " " < "$d/cmdline" 2>/dev/null; echo; done')


def accepting_workers(listing):
    """PIDs in a WORKERS_SCRIPT listing whose title is an nginx worker not shutting down."""
    pids = set()
    for line in listing.splitlines():
        pid, dummy, title = line.strip().partition(' ')
        if title.startswith('nginx: worker process') and 'shutting down' not in title:
            pids.add(pid)
    return pids


class GatewayError(Exception):
    """The gateway container is missing, not running, or a command in it failed."""


class Gateway(object):
    """The gateway container of a service, reached through the local Docker engine."""

    def __init__(self, container_name, client=None):
        self.name = container_name
        try:
            self.client = client or docker.from_env()
            self.container = self.client.containers.get(container_name)
        except NotFound:
            raise GatewayError('gateway container %s does not exist; deploy it with the '
                               'llmops.bluegreen.gateway role' % container_name)
        except DockerException as exc:
            raise GatewayError('cannot reach the Docker engine: %s' % exc)
        if self.container.status != 'running':
            raise GatewayError('gateway container %s is %s, not running; start it (docker start %s) '
                               'or rerun the llmops.bluegreen.gateway role'
                               % (container_name, self.container.status, container_name))

    def run(self, cmd):
        """Run ``cmd`` (list) in the container; returns ``(rc, stdout, stderr)`` as text."""
        try:
            rc, (out, err) = self.container.exec_run(cmd, demux=True)
        except DockerException as exc:
            raise GatewayError('docker exec %s %s failed: %s' % (self.name, ' '.join(cmd), exc))
        return rc, (out or b'').decode('utf-8', 'replace'), (err or b'').decode('utf-8', 'replace')

    def nginx_test(self):
        """``nginx -t``; returns ``(ok, nginx's message)``."""
        rc, out, err = self.run(['nginx', '-t'])
        return rc == 0, (err + out).strip()

    def accepting_workers(self):
        """PIDs of nginx workers that take new connections (not those draining after a reload).

        Read from /proc in the container: a worker retitles itself "is shutting down" once the
        master has told it to close its listening sockets. Empty when /proc cannot be listed.
        """
        rc, out, dummy = self.run(['sh', '-c', WORKERS_SCRIPT])
        if rc != 0:
            return set()
        return accepting_workers(out)

    def nginx_reload(self, timeout=10, clock=time.time, sleep=time.sleep):
        """Graceful reload (SIGHUP through ``nginx -s reload``): old workers finish their requests.

        ``nginx -s reload`` returns once the signal is sent; until the master has started new
        workers and retired the old ones, new connections still reach the old config. So wait
        (up to ``timeout`` s) until none of the workers that accepted before still accepts.
        """
        before = self.accepting_workers()
        rc, out, err = self.run(['nginx', '-s', 'reload'])
        if rc != 0:
            raise GatewayError('nginx -s reload in %s failed: %s' % (self.name, (err + out).strip()))
        if not before:
            return
        deadline = clock() + timeout
        while True:
            now = self.accepting_workers()
            if now and not now & before:
                return
            if clock() >= deadline:
                raise GatewayError('nginx in %s did not apply the reload within %d s: workers %s still '
                                   'accept connections (see docker logs %s)'
                                   % (self.name, timeout, ' '.join(sorted(now & before)), self.name))
            sleep(0.05)

    def upstream_health(self, server, timeout=5):
        """GET http://<server>/health from inside the gateway; returns ``(health dict, None)`` or ``(None, error)``."""
        rc, out, err = self.run(['curl', '-sS', '--max-time', str(timeout), '-H', 'Accept: application/json',
                                 'http://%s/health' % server])
        if rc != 0:
            return None, 'unreachable from the gateway (%s)' % (err.strip() or 'curl exit %d' % rc)
        try:
            health = json.loads(out)
        except ValueError:
            return None, '/health is not JSON: %r' % out[:200]
        if not isinstance(health, dict):
            return None, '/health is not a JSON object: %r' % out[:200]
        return health, None


def ssl_context(validate_certs=True, ca_path=None):
    """TLS context for verification requests."""
    if not validate_certs:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_path)


class _NamedHTTPSConnection(http_client.HTTPSConnection):
    """HTTPS to an address (127.0.0.1) with another TLS server name (SNI and certificate check)."""

    def __init__(self, host, port, server_name, context, timeout):
        http_client.HTTPSConnection.__init__(self, host, port, timeout=timeout, context=context)
        self.server_name = server_name
        self.tls_context = context

    def connect(self):
        http_client.HTTPConnection.connect(self)
        self.sock = self.tls_context.wrap_socket(self.sock, server_hostname=self.server_name)


def probe(url, header='X-QA-Color', context=None, timeout=5, headers=None, server_name=None, api_key=None):
    """One GET on a NEW connection; returns ``(status, header value, body color, error)``.

    ``server_name``: connect to the URL's address but present and verify this name
    (a gateway with a real certificate, checked through the loopback address).
    ``api_key``: sent as ``Authorization: Bearer <key>``; the gateway honours a color
    forced with ``X-QA-Color`` only for an operator key (gateway_operator_keys).
    """
    parts = urlparse(url)
    path = parts.path or '/'
    if parts.query:
        path += '?' + parts.query
    request_headers = {'Connection': 'close', 'Accept': 'application/json'}
    if parts.scheme == 'https' and server_name:
        context = context or ssl.create_default_context()
        conn = _NamedHTTPSConnection(parts.hostname, parts.port or 443, server_name, context, timeout)
        request_headers['Host'] = server_name
    elif parts.scheme == 'https':
        conn = http_client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout, context=context)
    else:
        conn = http_client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        request_headers.update(headers or {})
        if api_key:
            request_headers['Authorization'] = 'Bearer %s' % api_key
        conn.request('GET', path, headers=request_headers)
        response = conn.getresponse()
        body = response.read()
        value = response.getheader(header)
    except (IOError, OSError, http_client.HTTPException) as exc:
        return None, None, None, str(exc)
    finally:
        conn.close()
    color = None
    try:
        data = json.loads(body.decode('utf-8'))
        if isinstance(data, dict):
            color = data.get('color')
    except ValueError:
        pass
    return response.status, value, color, None
