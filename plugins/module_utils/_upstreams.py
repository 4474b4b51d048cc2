# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Render ``upstreams.conf`` (docs/contracts.md "Gateway").

The file is included in nginx's ``http {}``. It defines ``upstream
llmops_<color>`` for every deployed color (and ``llmops_<color>_failover`` for
each color with traffic, see render), the variable ``$llmops_color`` and the
block a request goes to, ``$llmops_upstream``:
weights decide through ``split_clients`` on ``$request_id`` (random per
request); the request header ``X-QA-Color`` picks a deployed color (smoke tests
of the idle color) only when ``$llmops_operator`` is 1, which the gateway
role's nginx.conf sets for operator keys (``gateway_operator_keys``). Output depends only on the inputs (sorted,
no timestamps), so "file equals desired" is the idempotence test.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.llmops.bluegreen.plugins.module_utils._state import COLORS

KEEPALIVE = 32
# host:port, IPv4:port or [IPv6]:port; nothing that could inject nginx syntax.
_SERVER_RE = re.compile(r'^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,252})|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$')

BOOTSTRAP = (
    '# Bootstrap written by the llmops.bluegreen gateway role: no color is deployed yet.\n'
    '# bluegreen_switch owns this file from the first switch on; do not edit.\n'
    'map "" $llmops_color {\n'
    '    default none;\n'
    '}\n'
    'map "" $llmops_upstream {\n'
    '    default none;\n'
    '}\n'
)
# Suffix of the upstream blocks through which clients fail over to the other color.
FAILOVER = '_failover'


class UpstreamError(Exception):
    """Invalid colors, servers or weights; the message says which and why."""


def validate(upstreams, weights):
    """Check ``{color: [host:port]}`` and ``{color: percent}`` (sum 100, deployed colors only)."""
    if not upstreams:
        raise UpstreamError('upstreams is empty: give at least the target color, e.g. '
                            '{"blue": ["qa-qa-blue:8000"]}')
    for color, servers in upstreams.items():
        if color not in COLORS:
            raise UpstreamError('unknown color %r in upstreams (use %s)' % (color, ' or '.join(COLORS)))
        if not isinstance(servers, list) or not servers:
            raise UpstreamError('upstreams.%s must be a non-empty list of host:port' % color)
        for server in servers:
            if not isinstance(server, str) or not _SERVER_RE.match(server) or int(server.rsplit(':', 1)[1]) > 65535:
                raise UpstreamError('upstreams.%s: %r is not host:port (e.g. qa-qa-%s:8000)' % (color, server, color))
    for color, weight in weights.items():
        if color not in COLORS:
            raise UpstreamError('unknown color %r in weights (use %s)' % (color, ' or '.join(COLORS)))
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0 or weight > 100:
            raise UpstreamError('weights.%s must be an integer 0..100, got %r' % (color, weight))
        if weight > 0 and color not in upstreams:
            raise UpstreamError('weights.%s is %d but upstreams has no %s servers; add upstreams.%s'
                                % (color, weight, color, color))
    total = sum(weights.values())
    if total != 100:
        raise UpstreamError('weights must add up to 100, got %d (%s)'
                            % (total, ', '.join('%s=%s' % kv for kv in sorted(weights.items()))))


def full_weights(upstreams, weights):
    """Weights for every deployed color (missing ones are 0)."""
    return dict((color, int(weights.get(color, 0))) for color in sorted(upstreams))


def render(service, upstreams, weights, keepalive=KEEPALIVE, canary=None, failover=True):
    """The complete upstreams.conf text for ``upstreams`` and ``weights``.

    ``keepalive`` goes to nginx as it is: nginx -t is the judge of its value. ``canary``:
    during a split, the new color, where tester keys (``$llmops_tester``) always go.
    ``failover``: with two colors deployed, a client request whose color has no server
    left (connection refused or timed out: its host or container is down) goes to the
    other color's servers (nginx ``backup``). Operator requests (the release's probes,
    the gate, ``X-QA-Color``) never fail over: they must see the color they name.
    """
    validate(upstreams, weights)
    weights = full_weights(upstreams, weights)
    colors = sorted(upstreams)
    positive = [color for color in colors if weights[color] > 0]
    lines = [
        '# Managed by llmops.bluegreen.bluegreen_switch for service %s; do not edit.' % service,
        '# weights: %s' % ' '.join('%s=%d' % (color, weights[color]) for color in colors),
    ]
    blocks = [(color, upstreams[color], []) for color in colors]
    failover = failover and len(colors) > 1
    if failover:
        blocks += [(color + FAILOVER, upstreams[color], [s for other in colors if other != color for s in upstreams[other]])
                   for color in positive]
    for name, servers, backups in blocks:
        lines.append('upstream llmops_%s {' % name)
        if backups:
            # Every worker sees a server that failed (max_fails), not only the one that tried it.
            lines.append('    zone llmops_%s 64k;' % name)
        lines.extend('    server %s;' % server for server in servers)
        lines.extend('    server %s backup;' % server for server in backups)
        lines.append('    keepalive %d;' % keepalive)
        lines.append('}')
    if len(positive) == 1:
        default = positive[0]
    else:
        default = '$llmops_weighted_color'
        lines.append('split_clients "${request_id}" $llmops_weighted_color {')
        for color in positive[:-1]:
            lines.append('    %d%% %s;' % (weights[color], color))
        lines.append('    * %s;' % positive[-1])
        lines.append('}')
        if canary in positive:
            # Tester keys (gateway_tester_keys; $llmops_tester from the gateway role) see the new color first.
            default = '$llmops_split_color'
            lines.append('map $llmops_tester $llmops_split_color {')
            lines.append('    default $llmops_weighted_color;')
            lines.append('    1 %s;' % canary)
            lines.append('}')
    lines.append('# X-QA-Color naming a deployed color overrides the weights, for operator keys only')
    lines.append('# ($llmops_operator is set by the gateway role\'s nginx.conf).')
    lines.append('map "$llmops_operator:$http_x_qa_color" $llmops_color {')
    lines.append('    default %s;' % default)
    for color in colors:
        lines.append('    "1:%s" %s;' % (color, color))
    lines.append('}')
    lines.append('# The upstream block a request goes to (operator keys: always the chosen color\'s own).')
    lines.append('map $llmops_operator $llmops_upstream {')
    if failover:
        lines.append('    default ${llmops_color}%s;' % FAILOVER)
        lines.append('    1 $llmops_color;')
    else:
        lines.append('    default $llmops_color;')
    lines.append('}')
    return '\n'.join(lines) + '\n'
