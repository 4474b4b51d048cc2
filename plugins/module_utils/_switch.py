# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The decisions and steps of a switch (docs/contracts-state.md "State").

Pure decisions: the weights asked for, the roles of the colors after the switch,
the new ``state.json`` record, whether anything changes at all, the audit record,
and whether a color's ``/health`` passes the gate. The steps (health gate,
verification, config apply and restore) get the gateway, the probe, the clock and
``sleep`` as arguments, so they are tested with fakes; ``bluegreen_switch`` wires
them to Docker and HTTP.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.llmops.bluegreen.plugins.module_utils._atomic import atomic_write
from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import GatewayError, probe, ssl_context
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import STATE_SCHEMA, StateError
from ansible_collections.llmops.bluegreen.plugins.module_utils._upstreams import BOOTSTRAP, full_weights

# What a color's record in state.json says it serves; compared by the release and shown by status.
RECORD_KEYS = ('kb_version', 'kb_checksum', 'model', 'version', 'release')
# The values O(expect) may require of a color's /health: (option, label in messages).
EXPECT_KEYS = (('kb_checksum', 'kb checksum'), ('model', 'model'), ('version', 'version'),
               ('release', 'release'))
# Keys of a color record that the switch computes and a caller cannot set.
COMPUTED_KEYS = ('since', 'upstreams')
# The options of the modules that act on the gateway (doc fragment llmops.bluegreen.attributes.gateway).
GATEWAY_ARGS = dict(
    gateway_container=dict(type='str', required=True),
    verify_url=dict(type='str', default='https://127.0.0.1/health'),
    verify_server_name=dict(type='str'),
    verify_header=dict(type='str', default='X-QA-Color'),
    verify_api_key=dict(type='str', no_log=True),
    validate_certs=dict(type='bool', default=True),
    ca_path=dict(type='path'),
)


class SwitchInputError(Exception):
    """The asked-for target is not possible; the message names the option and the fix."""


def desired_weights(service, upstreams, color=None, weights=None):
    """The weights asked for by ``color`` (all traffic) or ``weights`` (a split), as integers."""
    if color:
        if color not in (upstreams or {}):
            raise SwitchInputError('color %s has no servers in upstreams; add upstreams.%s, e.g. ["%s-qa-%s:8000"]'
                                   % (color, color, service, color))
        return full_weights(upstreams, {color: 100})
    result = {}
    for name, value in (weights or {}).items():
        try:
            result[name] = int(value)
        except (TypeError, ValueError):
            raise SwitchInputError('weights.%s must be an integer 0..100, got %r' % (name, value))
    return result


def targets(weights):
    """The colors that get traffic, sorted."""
    return sorted(color for color, weight in (weights or {}).items() if weight > 0)


def new_roles(state, weights):
    """``(active, previous, introduced colors)`` after a switch to ``weights``.

    One color at 100: it becomes active and the old active becomes previous. During a
    split ``active`` stays the stable color (the old active if it still gets traffic,
    else the heaviest) and the other receiving colors are the ones introduced.
    """
    old_active = (state or {}).get('active')
    old_previous = (state or {}).get('previous')
    positive = targets(weights)
    if len(positive) == 1:
        active = positive[0]
        previous = old_active if old_active and old_active != active else old_previous
        return active, previous, [active]
    if old_active in positive:
        active = old_active
    else:
        active = sorted(positive, key=lambda c: (-weights[c], c))[0]
    introduced = [color for color in positive if color != active] or positive
    return active, old_previous, introduced


def health_record(health):
    """The versions a color reports in its /health, in the state's record format."""
    health = health or {}
    kb = health.get('kb') if isinstance(health.get('kb'), dict) else {}
    return {'kb_version': kb.get('version'), 'kb_checksum': kb.get('checksum'),
            'model': health.get('model'), 'version': health.get('version'),
            # qa-api reports "" when it was started without QA_RELEASE: nothing to record.
            'release': health.get('release') or None}


def health_problem(color, server, health, expect):
    """``(problem, final)``: why this /health does not pass the gate, and whether waiting can help."""
    reported = health.get('color')
    if reported and reported != color:
        return ('%s upstream %s reports color %s; the upstreams mapping is wrong' % (color, server, reported), True)
    status = health.get('status')
    if status != 'ready':
        detail = ': %s' % health['error'] if health.get('error') else ''
        return ('%s (%s) is %s, not ready%s' % (color, server, status, detail), False)
    record = health_record(health)
    for key, label in EXPECT_KEYS:
        wanted = (expect or {}).get(key)
        if wanted is not None and record[key] != wanted:
            return ('%s (%s) reports %s %s, expected %s' % (color, server, label, record[key], wanted), True)
    return None, False


def color_record(old, health=None, info=None, upstreams=None, now=None):
    """A color's new record: the old one, updated from its /health, then from what the caller gave.

    Other keys a caller recorded (e.g. a config fingerprint) stay with the color. ``since``
    changes only when one of RECORD_KEYS does.
    """
    old = old or {}
    record = dict((key, value) for key, value in old.items() if key not in COMPUTED_KEYS)
    record.update((key, old.get(key)) for key in RECORD_KEYS)
    if health:
        record.update(health_record(health))
    for key, value in (info or {}).items():
        if value is not None and key not in COMPUTED_KEYS:
            record[key] = value
    same = bool(old) and all(old.get(key) == record[key] for key in RECORD_KEYS)
    record['since'] = old.get('since') if same and old.get('since') else now
    record['upstreams'] = list(upstreams or old.get('upstreams') or [])
    return record


def first_health(servers):
    """The /health of a color's first server (sorted), from ``{server: health}``, or None."""
    return servers[sorted(servers)[0]] if servers else None


def new_state(service, state, upstreams, weights, active, previous, health=None, colors_info=None, now=None):
    """The complete state.json after the switch (serial incremented).

    ``health``: ``{color: {server: /health}}`` of the gated colors; ``colors_info``:
    ``{color: {key: value}}`` the caller records (wins over /health). A color left out of
    ``upstreams`` is dropped (retired).
    """
    old_colors = (state or {}).get('colors') or {}
    health = health or {}
    info = colors_info or {}
    colors = {}
    for color in sorted(upstreams):
        colors[color] = color_record(old_colors.get(color), first_health(health.get(color)),
                                     info.get(color), upstreams[color], now)
    return {
        'schema': STATE_SCHEMA, 'service': service, 'active': active, 'previous': previous,
        'weights': dict(weights), 'serial': int((state or {}).get('serial') or 0) + 1, 'updated_at': now,
        'colors': colors,
    }


def unchanged(state, before_conf, desired_conf, upstreams, weights, active, introduced, expect=None):
    """True when the config file and state.json already say what is asked (no reload, no audit)."""
    if state is None or before_conf != desired_conf:
        return False
    if state.get('active') != active or state.get('weights') != weights:
        return False
    colors = state.get('colors') or {}
    if sorted(colors) != sorted(upstreams):
        return False
    for color in upstreams:
        if (colors.get(color) or {}).get('upstreams') != list(upstreams[color]):
            return False
    for color in introduced:
        for key, value in (expect or {}).items():
            if value is not None and (colors.get(color) or {}).get(key) != value:
                return False
    return True


def file_diff(path, before, after):
    """One diff entry of a file (``None`` before: the file did not exist)."""
    return {'before_header': path, 'after_header': path, 'before': before or '', 'after': after}


def audit_colors(state):
    """The RECORD_KEYS of every color of a state, for an audit record."""
    colors = (state or {}).get('colors') or {}
    return dict((color, dict((key, (colors[color] or {}).get(key)) for key in RECORD_KEYS)) for color in colors)


def audit_record(service, operator, action, state, after, weights, introduced, result, duration, now):
    """One audit.log line (docs/contracts-state.md): ``from`` the old active, ``to`` the introduced color(s)."""
    record = {
        'time': now, 'service': service, 'operator': operator, 'action': action,
        'from': (state or {}).get('active'),
        'to': introduced[0] if len(introduced) == 1 else list(introduced),
        'weights': weights, 'colors': audit_colors(after or state),
        'result': result, 'duration_s': round(duration, 3),
    }
    if after:
        record['serial'] = after['serial']
    return record


class SwitchFailed(Exception):
    """A step failed after the gate started: audited as ``failed: <msg>``; ``result``: extra keys of the failure."""

    def __init__(self, msg, **result):
        super(SwitchFailed, self).__init__(msg)
        self.result = result


class Verifier(object):
    """Requests through the gateway as GATEWAY_ARGS describe them, each on a new connection."""

    def __init__(self, params, clock=time.time, sleep=time.sleep):
        self.params = params
        self.context = ssl_context(params['validate_certs'], params['ca_path'])
        self.clock = clock
        self.sleep = sleep

    def probe(self, color=None, keyed=False):
        """``(status, header value, body color, error)``; ``color`` is forced with the header and the operator key.

        ``keyed``: the operator key without a color, routed by the weights but never failed over.
        """
        params = self.params
        headers = {params['verify_header']: color} if color else None
        api_key = params.get('verify_api_key') if color or keyed else None
        return probe(params['verify_url'], params['verify_header'], self.context, headers=headers,
                     server_name=params['verify_server_name'], api_key=api_key)

    def hits(self, weights, count, any_status=False):
        """verify_hits through this gateway within ``verify_timeout``."""
        params = self.params
        return verify_hits(self.probe, weights, count, params['verify_timeout'], self.clock(), self.clock,
                           self.sleep, params['verify_url'], params['verify_header'], any_status)

    def each(self, weights):
        """verify_each through this gateway."""
        verify_each(self.probe, weights, self.params['verify_header'])


def gate(fetch, upstreams, weights, introduced, expect, timeout, seen, clock, sleep):
    """Wait until every server of every color with traffic passes the health gate.

    ``fetch(server)`` returns ``(health dict, None)`` or ``(None, error)``; each /health
    read is stored in ``seen[color][server]``. ``expect`` applies to the introduced
    colors only. A final problem (wrong color, wrong checksum) fails at once; others are
    retried every second until ``timeout`` (0: one round). Raises SwitchFailed.
    """
    deadline = clock() + timeout
    while True:
        problems = []
        for color in targets(weights):
            wanted = expect if color in introduced else None
            for server in upstreams[color]:
                health, error = fetch(server)
                if error:
                    problems.append(('%s (%s) %s' % (color, server, error), False))
                    continue
                seen.setdefault(color, {})[server] = health
                problem, final = health_problem(color, server, health, wanted)
                if problem:
                    problems.append((problem, final))
        if not problems:
            return
        final = [text for text, is_final in problems if is_final]
        if final:
            raise SwitchFailed('health gate: ' + '; '.join(final))
        if clock() >= deadline:
            raise SwitchFailed('health gate: not ready after %d s: %s'
                               % (timeout, '; '.join(text for text, dummy in problems)))
        sleep(1)


def verify_hits(probe, weights, count, timeout, started, clock, sleep, describe='the gateway', header='X-QA-Color',
                any_status=False):
    """``count`` consecutive probes must reach a color with traffic; returns seconds to the first and to all.

    ``probe()`` returns ``(status, header value, body color, error)`` of one request on a
    new connection. Raises SwitchFailed naming the last miss after ``timeout`` seconds.
    ``any_status``: any answer naming the color counts (the bootstrap's color ``none`` answers 503).
    """
    wanted = set(targets(weights))
    deadline = clock() + timeout
    hits, first, last = 0, None, 'no response'
    while True:
        status, value, body_color, error = probe()
        now = clock()
        if any_status:
            hit = status is not None and value in wanted and body_color in (value, None)
        else:
            hit = status == 200 and value in wanted and body_color == value
        if hit:
            hits += 1
            first = now - started if first is None else first
            if hits >= count:
                return round(first, 3), round(clock() - started, 3)
        else:
            hits = 0
            last = error or 'HTTP %s, %s %s, body color %s' % (status, header, value, body_color)
        if now >= deadline:
            raise SwitchFailed('verify: only %d of %d consecutive requests through %s reached %s within %d s; '
                               'last miss: %s' % (hits, count, describe, '/'.join(sorted(wanted)), timeout, last))
        sleep(0.02)


def verify_each(probe, weights, header='X-QA-Color', count=3):
    """During a split, ``count`` requests forcing each receiving color with ``header`` must reach it.

    ``probe(color)`` sends the header (and the operator key the gateway wants for it). Several
    requests, because a gateway ignoring the header still reaches the color by its weight now and then.
    """
    for color in targets(weights) * count:
        status, value, body_color, error = probe(color)
        if not (status == 200 and value == color and body_color == color):
            hint = ' (the gateway honours %s only with an operator key: set verify_api_key)' % header \
                if status == 200 and value != color else ''
            raise SwitchFailed('verify: request with %s: %s reached %s (HTTP %s, body color %s)%s %s'
                               % (header, color, value, status, body_color, hint, error or ''))


def restore(gateway, conf_path, before, state, hits, reload=True):
    """Put the previous config back; after a reload, wait until requests reach the previous colors again.

    Without ``reload`` (nginx -t refused the new file, so nginx never loaded it) only the
    file is restored. ``hits(weights, count, any_status)`` is verify_hits bound to the probe.
    Returns a note for the error message.
    """
    try:
        # No file before: the gateway role's bootstrap (color none) is the safe fallback.
        atomic_write(conf_path, BOOTSTRAP if before is None else before)
        if not reload:
            return 'previous config restored'
        ok, message = gateway.nginx_test()
        if not ok:
            return 'restored config fails nginx -t too: %s' % message
        gateway.nginx_reload()
    except (GatewayError, OSError, StateError) as exc:
        return 'restoring the previous config failed: %s' % exc
    weights = (state or {}).get('weights') or {'none': 100}
    previous = '/'.join(targets(weights))
    try:
        hits(weights, 3, True)
    except SwitchFailed:
        return 'previous config restored, but requests do not reach %s yet' % previous
    return 'previous config restored, traffic back on %s' % previous


def apply_config(gateway, conf_path, before, desired, state, weights, hits, check_each, count, seconds, clock=time.time):
    """Back up, write, ``nginx -t``, graceful reload, verify; the previous config comes back on any failure.

    ``hits(weights, count, any_status)`` must return ``(first, all)`` seconds or raise
    SwitchFailed; ``check_each(weights)`` proves each color of a split routable. Fills
    ``seconds['reload']`` and ``seconds['verify']``; returns ``(first, all)``.
    """
    started = clock()
    if before is not None:
        atomic_write(conf_path + '.bak', before)
    atomic_write(conf_path, desired)
    ok, message = gateway.nginx_test()
    if not ok:
        note = restore(gateway, conf_path, before, state, hits, reload=False)
        raise SwitchFailed('nginx -t rejected the new upstreams.conf (%s): %s' % (note, message))
    try:
        gateway.nginx_reload()
    except GatewayError as exc:
        raise SwitchFailed('%s (%s)' % (exc, restore(gateway, conf_path, before, state, hits)))
    reloaded_at = clock()
    seconds['reload'] = round(reloaded_at - started, 3)
    try:
        first_all = hits(weights, count, False)
        if len(targets(weights)) > 1:
            check_each(weights)
    except SwitchFailed as exc:
        raise SwitchFailed('%s (%s)' % (exc, restore(gateway, conf_path, before, state, hits)))
    finally:
        seconds['verify'] = round(clock() - reloaded_at, 3)
    return first_all
