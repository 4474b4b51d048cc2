# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where each part of a service runs, from the inventory groups (docs/contracts.md "Fleet").

Groups: ``llmops_gateway`` (nginx, state, lock, audit; Redis unless ``llmops_redis``),
``llmops_blue`` and ``llmops_green`` (a color's inference and qa-api; several hosts = several
qa-api servers). A missing or empty color group means the gateway host itself: the local
single-host inventory needs no new group. The one place that decides how the gateway reaches
a color: by container name on its own Docker network when the color runs on the gateway host,
else ``llmops_private_address:<port of the color>`` of the color host. Redis likewise.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.llmops.bluegreen.plugins.module_utils._names import COLORS, QA_PORT, names

# A color host publishes its qa-api on its private interface at this port. The same for both
# colors: the published port is part of the definition, so of the release fingerprint, which must
# be the same for the same release on blue and on green (else every run would release again).
QA_FLEET_PORT = 8100
# Redis on its own host (or the gateway host, seen from a color host): published on the private interface.
REDIS_FLEET_PORT = 6379

_ADDRESS_RE = re.compile(r'^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))$')


class FleetError(ValueError):
    """An inventory that does not describe a fleet; the message names the group or host and the fix."""


def _group(groups, name):
    hosts = groups.get(name) or []
    if not isinstance(hosts, (list, tuple)):
        raise FleetError('inventory group %s must be a list of hosts, got %r' % (name, hosts))
    return list(hosts)


def private_address(hostvars, host, why):
    """The host's ``llmops_private_address``, or FleetError naming the host, why it needs one and the fix."""
    value = (hostvars.get(host) or {}).get('llmops_private_address')
    if not value:
        raise FleetError(
            'host %s has no llmops_private_address but %s: set it (host_vars) to the address of its private '
            'interface, where it publishes its ports' % (host, why))
    if not isinstance(value, str) or not _ADDRESS_RE.match(value) or value in ('0.0.0.0', '127.0.0.1'):
        raise FleetError('host %s: llmops_private_address %r is not one private IPv4 address or host name '
                         '(not 0.0.0.0 nor loopback: the other hosts must reach it)' % (host, value))
    return value


def fleet(groups, hostvars, service='qa', state_dir=None):
    """Placement of ``service``: a JSON-serialisable dict.

    ``gateway``: the host that keeps state and runs nginx (the first of ``llmops_gateway``,
    else of ``llmops``). ``redis``: {host, address} where qa-api servers reach Redis from a
    color host (the container name on the gateway host itself). ``colors.<color>``: ``hosts``,
    ``upstreams`` (host:port, what the gateway's upstream lists) and ``publish`` (per host: the
    Docker ``published_ports`` of its qa-api, empty on the gateway host). ``hosts``: every host
    of the service, gateway first. ``remote``: whether any color runs away from the gateway.
    """
    n = names(service, state_dir)
    gateways = _group(groups, 'llmops_gateway') or _group(groups, 'llmops')
    if not gateways and len(_group(groups, 'all')) == 1:
        # `-i host,`: an inventory of one host without groups is that host for everything.
        gateways = _group(groups, 'all')
    if not gateways:
        raise FleetError('no gateway host: put one host in the inventory group llmops_gateway (or llmops)')
    if len(gateways) > 1:
        raise FleetError('llmops_gateway has %d hosts (%s): state, lock and audit live on one gateway host; '
                         'keep one in the group' % (len(gateways), ', '.join(gateways)))
    gateway = gateways[0]
    redis_hosts = _group(groups, 'llmops_redis')
    if len(redis_hosts) > 1:
        raise FleetError('llmops_redis has %d hosts (%s): give at most one' % (len(redis_hosts), ', '.join(redis_hosts)))
    redis_host = redis_hosts[0] if redis_hosts else gateway
    color_groups = dict((color, _group(groups, 'llmops_%s' % color) or [gateway]) for color in COLORS)
    color_hosts = [h for color in COLORS for h in color_groups[color]]
    remote = any(h != redis_host for h in color_hosts)
    # Reached across hosts (with its password, as everywhere): published on the private interface
    # only (Redis is in no color's spec, so its address may be spelled out).
    address = private_address(hostvars, redis_host, 'qa-api servers on other hosts reach its Redis') if remote else None
    redis = {'host': redis_host, 'address': address or n['redis'],
             'publish': ['%s:%d:6379' % (address, REDIS_FLEET_PORT)] if remote else []}
    colors = {}
    for color in COLORS:
        hosts = color_groups[color]
        if len(set(hosts)) != len(hosts):
            raise FleetError('llmops_%s lists a host twice: %s' % (color, ', '.join(hosts)))
        upstreams, publish, redis_at = [], {}, {}
        for host in hosts:
            # QA_REDIS_HOST of the host's qa-api (its port is REDIS_FLEET_PORT either way).
            redis_at[host] = n['redis'] if host == redis_host else redis['address']
            if host == gateway:
                # Same Docker engine as nginx: the container name on the service network.
                upstreams.append(n['upstream'][color])
                publish[host] = []
            else:
                address = private_address(hostvars, host, 'the gateway reaches its %s qa-api there' % color)
                upstreams.append('%s:%d' % (address, QA_FLEET_PORT))
                # The bind address is the host's network's (docker_host_bind_address), so the
                # definition, and the color's release fingerprint, is the same on every host.
                publish[host] = ['%d:%d' % (QA_FLEET_PORT, QA_PORT)]
        colors[color] = {'hosts': hosts, 'upstreams': upstreams, 'publish': publish, 'redis': redis_at}
    both = sorted(set(color_groups['blue']) & set(color_groups['green']) - set([gateway]))
    if both:
        raise FleetError('host %s is in both llmops_blue and llmops_green: a color host away from the gateway carries '
                         'one color (both would publish port %d); give each color its own hosts'
                         % (', '.join(both), QA_FLEET_PORT))
    remote = any(h != gateway for h in color_hosts)
    ordered = [gateway] + [h for h in [redis_host] + color_hosts if h != gateway]
    hosts = []
    for host in ordered:
        if host not in hosts:
            hosts.append(host)
    return {'gateway': gateway, 'redis': redis, 'colors': colors, 'hosts': hosts, 'remote': remote,
            'color_hosts': dict((color, colors[color]['hosts']) for color in COLORS)}


def host_roles(placement, host):
    """What ``host`` runs: a sorted list among gateway, redis, blue, green."""
    out = []
    if host == placement['gateway']:
        out.append('gateway')
    if host == placement['redis']['host']:
        out.append('redis')
    out.extend(color for color in COLORS if host in placement['colors'][color]['hosts'])
    return sorted(out)


def host_images(placement, host, monitoring=False, shared_inference=True, llamacpp=True):
    """The images (directory names under images/) ``host`` runs: a sorted list.

    The gateway host runs nginx, the knowledge base builder (the qa-api image), Prometheus when
    monitored and the shared inference server; the Redis host Redis; a color host its qa-api and,
    in independent mode, its own inference server. ``llamacpp`` false: the inference image is not
    one of the collection's (vLLM).
    """
    roles = host_roles(placement, host)
    out = set()
    if 'gateway' in roles:
        out.update(['gateway', 'qa-api'])
        if monitoring:
            out.add('prometheus')
        if shared_inference and llamacpp:
            out.add('llm-llamacpp')
    if 'redis' in roles:
        out.add('redis')
    if set(roles) & set(COLORS):
        out.add('qa-api')
        if not shared_inference and llamacpp:
            out.add('llm-llamacpp')
    return sorted(out)
