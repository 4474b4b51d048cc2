# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Names of one service on a host: containers, networks, paths, upstream addresses.

The single place these are spelled (docs/contracts.md "Names on a host"); roles read
them through the filter ``llmops.bluegreen.names`` and modules import this file.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

COLORS = ('blue', 'green')
QA_PORT = 8000
LLM_PORT = 8000
PROMETHEUS_PORT = 9090
REDIS_EXPORTER_PORT = 9121
NGINX_EXPORTER_PORT = 9113
# nginx stub_status of the gateway: loopback only, read by the exporter in the same namespace.
GATEWAY_STATUS_PORT = 8081
# Prometheus job of the qa-api targets; each carries the labels service and color, which
# the alert rules and slo_check select on.
QA_JOB = 'qa-api'
DEFAULT_STATE_DIR = '/var/lib/llmops'

_SERVICE_RE = re.compile(r'^[a-z0-9][a-z0-9_.-]{0,62}$')


class NamesError(ValueError):
    """A service name that cannot name containers, networks and a directory."""


def check_service(service):
    """The service name, or NamesError naming the rule."""
    if not isinstance(service, str) or not _SERVICE_RE.match(service):
        raise NamesError(
            'invalid service name %r: use lower-case letters, digits, ".", "_" or "-" '
            '(it names containers, networks and a directory)' % (service,))
    return service


def names(service='qa', state_dir=DEFAULT_STATE_DIR, network=None, internal_network=None):
    """Every name of ``service``: a dict of plain strings (JSON-serialisable for Jinja)."""
    check_service(service)
    state_dir = (state_dir or DEFAULT_STATE_DIR).rstrip('/') or '/'
    base = '%s/%s' % (state_dir, service)
    qa = dict((color, '%s-qa-%s' % (service, color)) for color in COLORS)
    llm = dict((color, '%s-llm-%s' % (service, color)) for color in COLORS)
    llm['shared'] = '%s-llm' % service
    return {
        'service': service,
        # Egress-capable bridge: only what is reached from outside (the gateway's port holder,
        # Prometheus) or must reach out (a qa-api whose backend is an external provider).
        'network': network or '%s-net' % service,
        # internal: true, no egress: the colors' qa-api and inference, Redis, the exporters.
        'internal_network': internal_network or '%s-internal' % service,
        'gateway': '%s-gateway' % service,
        # Owns the gateway's network namespace and published ports (docs/gateway-updates.md).
        'gateway_net': '%s-gateway-net' % service,
        'redis': '%s-redis' % service,
        'prometheus': '%s-prometheus' % service,
        'redis_exporter': '%s-redis-exporter' % service,
        # Runs in the gateway holder's namespace (reads stub_status on its loopback).
        'nginx_exporter': '%s-nginx-exporter' % service,
        'qa': qa,
        'llm': llm,
        'qa_port': QA_PORT,
        'llm_port': LLM_PORT,
        'prometheus_port': PROMETHEUS_PORT,
        'redis_exporter_port': REDIS_EXPORTER_PORT,
        'nginx_exporter_port': NGINX_EXPORTER_PORT,
        'gateway_status_port': GATEWAY_STATUS_PORT,
        'qa_job': QA_JOB,
        # How the gateway reaches each color on the service network.
        'upstream': dict((color, '%s:%d' % (qa[color], QA_PORT)) for color in COLORS),
        'state_dir': state_dir,
        'dir': base,
        'state': base + '/state.json',
        'audit': base + '/audit.log',
        'lock': base + '/lock',
        'nginx_dir': base + '/nginx',
        'upstreams': base + '/nginx/upstreams.conf',
        'secrets_dir': base + '/secrets',
        'gateway_dir': base + '/gateway',
        'gateway_conf_dir': base + '/gateway/conf',
        'gateway_candidate_dir': base + '/gateway/candidate',
        'tls_dir': base + '/gateway/tls',
        'tls_cert': base + '/gateway/tls/gateway.crt',
        'operator_key': base + '/gateway/operator.key',
        'docs_root': base + '/docs',
        'kb_root': base + '/kb',
        'reports_dir': base + '/reports',
        'specs_dir': base + '/specs',
        'model_digests': base + '/specs/model-digests.json',
        'monitoring_dir': base + '/monitoring',
        'prometheus_conf_dir': base + '/monitoring/conf',
        'prometheus_candidate_dir': base + '/monitoring/candidate',
        # Archived container logs (0700): one directory per container, positions.json.
        'logs_dir': base + '/logs',
        'log_positions': base + '/logs/positions.json',
    }


# Docker's embedded DNS forwards a name it does not know to the host's resolvers, which an
# internal network cannot reach: the lookup of a stopped container (Redis down) hung 10 s
# (measured, Docker 20.10). With ndots:1 it leaves single-label names (every container name)
# unforwarded and answers at once.
INTERNAL_DNS_OPTS = ('ndots:1',)


def container_networks(internal, egress=None):
    """How a container is attached: ``{'networks': [...], 'network_mode': ..., 'dns_opts': [...]}``.

    ``internal`` alone: only the internal network (no egress). With ``egress`` the
    container joins both, the egress network first: it is the network_mode, so adding the
    internal network to a running container of an earlier version is a live
    ``docker network connect`` (a changed network_mode would recreate it), and the default
    route comes from it. ``dns_opts`` is for a container on the internal network alone (empty
    otherwise: a running holder given new DNS options would be recreated).
    """
    if not internal:
        raise NamesError('an internal network name is required (llmops_internal_network)')
    attached = [egress, internal] if egress and egress != internal else [internal]
    return {'networks': [{'name': name} for name in attached], 'network_mode': attached[0],
            'dns_opts': [] if len(attached) > 1 else list(INTERNAL_DNS_OPTS)}
