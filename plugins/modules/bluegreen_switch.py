#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: bluegreen_switch
short_description: Switch a service's gateway traffic to a color or to weights, gated and verified
version_added: 0.1.0
description:
  - Points the nginx gateway of a service at one color (blue/green) or splits traffic by weights (canary),
    with zero downtime.
  - "Flow: lock the service; read C(state.json); render C(upstreams.conf); if the file and the state already
    match, return C(changed=false) without reloading or auditing; health gate of every color that gets
    traffic (C(/health) fetched with curl from inside the gateway container must be C(ready), report its
    own color and the O(expect) values); back up the config to C(upstreams.conf.bak) and write the new one
    atomically; C(nginx -t) in the gateway (restore the backup on failure); graceful C(nginx -s reload)
    (never a restart); verify through the gateway, each request on a new connection, that O(verify_count)
    consecutive requests reach the target; on failure restore the backup and reload; write C(state.json)
    atomically and append an audit line; release the lock."
  - A switch that fails after the health gate started appends an audit line with result C(failed <reason>).
  - State lives in O(state_dir)/O(service)/ as described in the collection's docs/contracts.md.
author:
  - llmops.bluegreen developers (@llmops)
requirements:
  - Docker SDK for Python (C(docker)) on the gateway host.
extends_documentation_fragment:
  - llmops.bluegreen.attributes
  - llmops.bluegreen.attributes.service_state
attributes:
  check_mode:
    support: full
    details:
      - Check mode takes no lock, writes nothing and does not reload, but probes the health gate once (a failure
        is a warning, since a release in check mode has not started the new color) and reports C(changed) and
        the diff exactly as a real run would decide them.
  diff_mode:
    support: full
    details:
      - Shows C(upstreams.conf) and C(state.json) before and after.
  idempotent:
    support: full
options:
  color:
    description:
      - Send all traffic to this color.
      - Exactly one of O(color) and O(weights) is required.
    type: str
    choices: [blue, green]
  weights:
    description:
      - 'Split traffic by percent, for example C({"blue": 95, "green": 5}); the values must add up to 100.'
      - Colors with weight 0 stay deployed (reachable with the request header C(X-QA-Color)).
      - C(active) in the state changes only when one color gets 100; during a split it names the stable color.
    type: dict
  upstreams:
    description:
      - 'Deployed colors and their servers, for example C({"blue": ["qa-qa-blue:8000"], "green": ["qa-qa-green:8000"]}).'
      - Names are resolved by nginx inside the gateway container; every listed color must be resolvable there.
      - A color left out is no longer routable and is dropped from the state (retired).
    type: dict
    required: true
  expect:
    description:
      - Values the introduced color must report in its C(/health) JSON before it gets traffic.
      - They apply to O(color), or with O(weights) to every color with weight above 0 that is not the active one.
    type: dict
    suboptions:
      kb_checksum:
        description: Expected C(kb.checksum).
        type: str
      model:
        description: Expected C(model).
        type: str
      version:
        description: Expected C(version) (qa-api image version).
        type: str
  health_timeout:
    description:
      - Seconds to wait for the target colors to become C(ready) (polled every second).
      - A color that is C(ready) but reports other values than O(expect) fails at once.
    type: int
    default: 120
  gateway_container:
    description:
      - Name of the gateway container (C(<service>-gateway)).
    type: str
    required: true
  verify_url:
    description:
      - URL requested through the gateway after the reload; the response's O(verify_header) and JSON C(color)
        must name the target.
    type: str
    default: https://127.0.0.1/health
  verify_server_name:
    description:
      - TLS server name (SNI, certificate check) and C(Host) header of the verification requests, while
        connecting to the address in O(verify_url).
      - For a gateway with a real certificate for its public name, verified through the loopback address.
    type: str
  verify_header:
    description:
      - Response header that names the color that served the request.
    type: str
    default: X-QA-Color
  keepalive:
    description:
      - Idle keepalive connections from each gateway worker to each color's upstream.
      - Passed to nginx as it is; nginx -t decides whether it is valid (it must be at least 1).
    type: int
    default: 32
  verify_count:
    description:
      - Number of consecutive requests, each on a new connection, that must reach the target.
    type: int
    default: 10
  verify_timeout:
    description:
      - Seconds allowed for O(verify_count) consecutive hits after the reload.
    type: int
    default: 30
  validate_certs:
    description:
      - Verify the gateway's TLS certificate during verification.
      - Set to V(false) for a self-signed certificate, or give its CA in O(ca_path).
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle (PEM) to verify the gateway's certificate with.
    type: path
  lock_token:
    description:
      - Token of a lease taken before with M(llmops.bluegreen.bluegreen_lock); the switch then runs inside it
        and leaves it held.
      - Without it the switch takes its own lease for its duration.
    type: str
  operator:
    description:
      - Who asked for the switch, for the audit log. Defaults to the OS user running the module.
    type: str
  action:
    description:
      - Kind of change recorded in the audit log and as the lock's operation.
    type: str
    choices: [switch, rollback, abort, retire]
    default: switch
  colors_info:
    description:
      - 'Versions to record per color in the state, for example
        C({"green": {"kb_version": "3fa2c1d9e8b7", "kb_checksum": "...", "model": "...", "version": "..."}}).'
      - By default a gated color's record is taken from its C(/health) and other colors keep their record.
      - Other keys (for example a C(config) fingerprint the release compares on its next run) are recorded as given
        and stay with the color until a later O(colors_info) replaces them.
    type: dict
notes:
  - The gateway must mount O(state_dir)/O(service)/nginx/ at /etc/nginx/llmops/ (a directory mount, so the
    atomic rename of C(upstreams.conf) is seen), as the llmops.bluegreen.gateway role does.
seealso:
  - module: llmops.bluegreen.bluegreen_info
  - module: llmops.bluegreen.bluegreen_lock
"""

EXAMPLES = r"""
- name: Switch all traffic to green once it reports the new knowledge base
  llmops.bluegreen.bluegreen_switch:
    service: qa
    color: green
    upstreams:
      blue: [qa-qa-blue:8000]
      green: [qa-qa-green:8000]
    expect:
      kb_checksum: "{{ kb.checksum }}"
      model: smollm2-135m-instruct
    gateway_container: qa-gateway
    verify_url: https://127.0.0.1:8443/health
    validate_certs: false
  register: switch

- name: Canary step, 25 % to green
  llmops.bluegreen.bluegreen_switch:
    service: qa
    weights:
      blue: 75
      green: 25
    upstreams:
      blue: [qa-qa-blue:8000]
      green: [qa-qa-green:8000]
    gateway_container: qa-gateway
    ca_path: /var/lib/llmops/qa/gateway/tls/gateway.crt
    lock_token: "{{ release_lock.token }}"
"""

RETURN = r"""
active:
  description: Color holding the traffic (during a split, the stable color).
  returned: success
  type: str
  sample: green
previous:
  description: Color that was active before the last full switch, or null.
  returned: success
  type: str
  sample: blue
weights:
  description: Weights per deployed color after the task.
  returned: success
  type: dict
  sample: {"blue": 0, "green": 100}
serial:
  description: State serial after the task (incremented by every switch).
  returned: success
  type: int
  sample: 4
state:
  description: Content of C(state.json) after the task (in check mode, what it would be).
  returned: success
  type: dict
health:
  description: C(/health) JSON of each gated server, by color and server.
  returned: when the health gate ran
  type: dict
  sample: {"green": {"qa-qa-green:8000": {"status": "ready", "color": "green"}}}
audit:
  description: The audit record appended.
  returned: when a switch was made
  type: dict
upstreams_conf:
  description: Path of the rendered upstream configuration.
  returned: always
  type: str
  sample: /var/lib/llmops/qa/nginx/upstreams.conf
seconds:
  description: Durations of the phases in seconds.
  returned: success
  type: dict
  contains:
    health:
      description: Health gate.
      type: float
    reload:
      description: Write, C(nginx -t) and C(nginx -s reload).
      type: float
    verify:
      description: Verification through the gateway.
      type: float
    total:
      description: Whole task, lock included.
      type: float
first_target_seconds:
  description: Seconds from the reload until the first verification request reached the target.
  returned: when a switch was made
  type: float
all_target_seconds:
  description: Seconds from the reload until O(verify_count) consecutive requests had reached the target.
  returned: when a switch was made
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import (
    DOCKER_IMPORT_ERROR,
    HAS_DOCKER,
    Gateway,
    GatewayError,
    probe,
    ssl_context,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._lock import (
    LockError,
    acquire,
    check_free,
    check_token,
    release,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import (
    SERVICE_STATE_ARGS,
    AUDIT_FILE,
    LOCK_FILE,
    NGINX_DIR,
    STATE_FILE,
    STATE_SCHEMA,
    UPSTREAMS_FILE,
    StateError,
    append_audit,
    atomic_write,
    current_user,
    dump_json,
    ensure_dir,
    read_state,
    read_text,
    service_dir,
    utc_now,
    write_state,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._upstreams import (
    BOOTSTRAP,
    UpstreamError,
    full_weights,
    render,
)

RECORD_KEYS = ('kb_version', 'kb_checksum', 'model', 'version')


class SwitchFailed(Exception):
    """A step failed after the gate started: audited as ``failed: <msg>``."""


def health_record(health):
    """The versions a color reports, in the state's record format."""
    kb = health.get('kb') if isinstance(health.get('kb'), dict) else {}
    return {'kb_version': kb.get('version'), 'kb_checksum': kb.get('checksum'),
            'model': health.get('model'), 'version': health.get('version')}


def health_problem(color, server, health, expect):
    """``(problem, final)``: why this /health does not pass the gate, and whether waiting can help."""
    reported = health.get('color')
    if reported and reported != color:
        return ('%s upstream %s reports color %s; the upstreams mapping is wrong' % (color, server, reported), True)
    status = health.get('status')
    if status != 'ready':
        detail = ': %s' % health['error'] if health.get('error') else ''
        return ('%s (%s) is %s, not ready%s' % (color, server, status, detail), False)
    checks = (('kb_checksum', 'kb checksum', health_record(health)['kb_checksum']),
              ('model', 'model', health.get('model')),
              ('version', 'version', health.get('version')))
    for key, label, value in checks:
        wanted = (expect or {}).get(key)
        if wanted is not None and value != wanted:
            return ('%s (%s) reports %s %s, expected %s' % (color, server, label, value, wanted), True)
    return None, False


class Switch(object):

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.started = time.time()
        self.seconds = {'health': 0.0, 'reload': 0.0, 'verify': 0.0, 'total': 0.0}
        self.service = self.params['service']
        try:
            self.dir = service_dir(self.params['state_dir'], self.service)
        except StateError as exc:
            module.fail_json(msg=str(exc))
        self.nginx_dir = '%s/%s' % (self.dir, NGINX_DIR)
        self.conf_path = '%s/%s' % (self.nginx_dir, UPSTREAMS_FILE)
        self.state_path = '%s/%s' % (self.dir, STATE_FILE)
        self.audit_path = '%s/%s' % (self.dir, AUDIT_FILE)
        self.lock_path = '%s/%s' % (self.dir, LOCK_FILE)
        self.own_lock = None
        self.health = {}

    # -- inputs ---------------------------------------------------------
    def desired_weights(self):
        upstreams = self.params['upstreams']
        if self.params['color']:
            color = self.params['color']
            if color not in upstreams:
                self.module.fail_json(msg='color %s has no servers in upstreams; add upstreams.%s, e.g. ["%s-qa-%s:8000"]'
                                      % (color, color, self.service, color))
            return full_weights(upstreams, {color: 100})
        weights = {}
        for color, value in self.params['weights'].items():
            try:
                weights[color] = int(value)
            except (TypeError, ValueError):
                self.module.fail_json(msg='weights.%s must be an integer 0..100, got %r' % (color, value))
        return weights

    def new_roles(self, state, weights):
        """``(active, previous, introduced colors)`` after the switch."""
        old_active = (state or {}).get('active')
        old_previous = (state or {}).get('previous')
        positive = sorted(color for color, weight in weights.items() if weight > 0)
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

    # -- steps ------------------------------------------------------------
    def lock(self):
        token = self.params['lock_token']
        try:
            if not self.module.check_mode:
                ensure_dir(self.nginx_dir)
            if token:
                check_token(self.lock_path, self.service, token)
            elif self.module.check_mode:
                check_free(self.lock_path, self.service)
            else:
                ttl = self.params['health_timeout'] + self.params['verify_timeout'] + 300
                dummy, self.own_lock = acquire(self.lock_path, self.service, self.params['action'], ttl=ttl)
        except (LockError, StateError, OSError) as exc:
            self.module.fail_json(msg=str(exc))

    def unlock(self):
        if self.own_lock:
            try:
                release(self.lock_path, self.service, token=self.own_lock['token'])
            except (LockError, StateError, OSError) as exc:
                self.module.warn('could not release the lock: %s' % exc)
            self.own_lock = None

    def gate(self, gateway, weights, introduced):
        """Wait until every server of every color with traffic passes; raise SwitchFailed otherwise.

        In check mode a single probe: a release in check mode has not started the new color.
        """
        started = time.time()
        deadline = started + (0 if self.module.check_mode else self.params['health_timeout'])
        targets = sorted(color for color, weight in weights.items() if weight > 0)
        while True:
            problems = []
            for color in targets:
                expect = self.params['expect'] if color in introduced else None
                for server in self.params['upstreams'][color]:
                    health, error = gateway.upstream_health(server)
                    if error:
                        problems.append(('%s (%s) %s' % (color, server, error), False))
                        continue
                    self.health.setdefault(color, {})[server] = health
                    problem, final = health_problem(color, server, health, expect)
                    if problem:
                        problems.append((problem, final))
            self.seconds['health'] = round(time.time() - started, 3)
            if not problems:
                return
            final = [text for text, is_final in problems if is_final]
            if final:
                raise SwitchFailed('health gate: ' + '; '.join(final))
            if time.time() >= deadline:
                raise SwitchFailed('health gate: not ready after %d s: %s'
                                   % (self.params['health_timeout'], '; '.join(text for text, dummy in problems)))
            time.sleep(1)

    def probe(self, context, color=None):
        """One request through the gateway on a new connection (forcing ``color`` with the header)."""
        params = self.params
        headers = {params['verify_header']: color} if color else None
        return probe(params['verify_url'], params['verify_header'], context, headers=headers,
                     server_name=params['verify_server_name'])

    def verify(self, reloaded_at, weights):
        """Consecutive new-connection requests through the gateway must reach the target colors."""
        params = self.params
        context = ssl_context(params['validate_certs'], params['ca_path'])
        targets = set(color for color, weight in weights.items() if weight > 0)
        deadline = time.time() + params['verify_timeout']
        hits = 0
        first = None
        last = 'no response'
        while True:
            status, header, body_color, error = self.probe(context)
            now = time.time()
            if status == 200 and header in targets and body_color == header:
                hits += 1
                if first is None:
                    first = now - reloaded_at
                if hits >= params['verify_count']:
                    break
            else:
                hits = 0
                last = error or 'HTTP %s, %s %s, body color %s' % (status, params['verify_header'], header, body_color)
            if now >= deadline:
                raise SwitchFailed('verify: only %d of %d consecutive requests through %s reached %s within %d s; last miss: %s'
                                   % (hits, params['verify_count'], params['verify_url'], '/'.join(sorted(targets)),
                                      params['verify_timeout'], last))
            time.sleep(0.02)
        all_hits = time.time() - reloaded_at
        if len(targets) > 1:
            # Weighted: also prove each receiving color is routable on its own.
            for color in sorted(targets):
                status, header, body_color, error = self.probe(context, color)
                if not (status == 200 and header == color and body_color == color):
                    raise SwitchFailed('verify: request with %s: %s reached %s (HTTP %s, body color %s) %s'
                                       % (params['verify_header'], color, header, status, body_color, error or ''))
        return round(first, 3), round(all_hits, 3)

    def restore(self, gateway, before, state, reload=True):
        """Put the previous config back; after a reload, wait until requests reach the previous colors again.

        Without ``reload`` (nginx -t refused the new file, so nginx never loaded it) only the
        file is restored. Returns a note for the error message.
        """
        try:
            # No file before: the gateway role's bootstrap (color none) is the safe fallback.
            atomic_write(self.conf_path, BOOTSTRAP if before is None else before)
            if not reload:
                return 'previous config restored'
            ok, message = gateway.nginx_test()
            if not ok:
                return 'restored config fails nginx -t too: %s' % message
            gateway.nginx_reload()
        except (GatewayError, OSError, StateError) as exc:
            return 'restoring the previous config failed: %s' % exc
        weights = (state or {}).get('weights') or {}
        previous = set(color for color, weight in weights.items() if weight > 0) or set(['none'])
        context = ssl_context(self.params['validate_certs'], self.params['ca_path'])
        deadline = time.time() + self.params['verify_timeout']
        hits = 0
        while hits < 3:
            dummy, header, body_color, dummy2 = self.probe(context)
            hits = hits + 1 if header in previous and body_color in (header, None) else 0
            if time.time() >= deadline:
                return 'previous config restored, but requests do not reach %s yet' % '/'.join(sorted(previous))
            time.sleep(0.02)
        return 'previous config restored, traffic back on %s' % '/'.join(sorted(previous))

    def new_state(self, state, weights, active, previous, now):
        old_colors = (state or {}).get('colors') or {}
        info = self.params['colors_info'] or {}
        colors = {}
        for color in sorted(self.params['upstreams']):
            old = old_colors.get(color) or {}
            # Other keys a caller recorded (e.g. a config fingerprint) stay with the color.
            record = dict((key, value) for key, value in old.items() if key not in ('since', 'upstreams'))
            record.update((key, old.get(key)) for key in RECORD_KEYS)
            servers = self.health.get(color) or {}
            if servers:
                record.update(health_record(servers[sorted(servers)[0]]))
            for key, value in (info.get(color) or {}).items():
                if value is not None and key not in ('since', 'upstreams'):
                    record[key] = value
            same = old and all(old.get(key) == record[key] for key in RECORD_KEYS)
            record['since'] = old.get('since') if same and old.get('since') else now
            record['upstreams'] = list(self.params['upstreams'][color])
            colors[color] = record
        return {
            'schema': STATE_SCHEMA, 'service': self.service, 'active': active, 'previous': previous,
            'weights': weights, 'serial': int((state or {}).get('serial') or 0) + 1, 'updated_at': now,
            'colors': colors,
        }

    def unchanged(self, state, before_conf, desired_conf, weights, active, introduced):
        if state is None or before_conf != desired_conf:
            return False
        if state.get('active') != active or state.get('weights') != weights:
            return False
        colors = state.get('colors') or {}
        if sorted(colors) != sorted(self.params['upstreams']):
            return False
        for color in self.params['upstreams']:
            if (colors.get(color) or {}).get('upstreams') != list(self.params['upstreams'][color]):
                return False
        for color in introduced:
            for key, value in (self.params['expect'] or {}).items():
                if value is not None and (colors.get(color) or {}).get(key) != value:
                    return False
        return True

    def audit(self, state, new_state, weights, introduced, result):
        colors = (new_state or state or {}).get('colors') or {}
        record = {
            'time': utc_now(), 'service': self.service,
            'operator': self.params['operator'] or current_user(),
            'action': self.params['action'], 'from': (state or {}).get('active'),
            'to': introduced[0] if len(introduced) == 1 else introduced,
            'weights': weights,
            'colors': dict((color, dict((key, colors[color].get(key)) for key in RECORD_KEYS)) for color in colors),
            'result': result, 'duration_s': round(time.time() - self.started, 3),
        }
        if new_state:
            record['serial'] = new_state['serial']
        if not self.module.check_mode:
            append_audit(self.audit_path, record)
        return record

    def run(self):
        module = self.module
        weights = self.desired_weights()
        try:
            render(self.service, self.params['upstreams'], weights, self.params['keepalive'])
        except UpstreamError as exc:
            module.fail_json(msg=str(exc))
        weights = full_weights(self.params['upstreams'], weights)
        self.lock()
        try:
            result = self.switch(weights)
        finally:
            self.unlock()
        self.seconds['total'] = round(time.time() - self.started, 3)
        result['seconds'] = self.seconds
        module.exit_json(**result)

    def switch(self, weights):
        module = self.module
        try:
            state = read_state(self.state_path)
            before_conf = read_text(self.conf_path)
        except StateError as exc:
            self.unlock()
            module.fail_json(msg=str(exc))
        desired_conf = render(self.service, self.params['upstreams'], weights, self.params['keepalive'])
        active, previous, introduced = self.new_roles(state, weights)
        result = {'changed': False, 'upstreams_conf': self.conf_path}
        if self.unchanged(state, before_conf, desired_conf, weights, active, introduced):
            result.update(active=active, previous=state.get('previous'), weights=weights,
                          serial=state.get('serial'), state=state)
            return result
        try:
            gateway = Gateway(self.params['gateway_container'])
        except GatewayError as exc:
            self.unlock()
            module.fail_json(msg=str(exc))
        new_state = None
        try:
            try:
                self.gate(gateway, weights, introduced)
            except SwitchFailed as exc:
                if not module.check_mode:
                    raise
                module.warn('check mode: the switch would fail now unless the target becomes healthy first: %s' % exc)
            new_state = self.new_state(state, weights, active, previous, utc_now())
            result.update(changed=True, active=active, previous=previous, weights=weights,
                          serial=new_state['serial'], state=new_state, health=self.health)
            if module._diff:
                result['diff'] = [
                    {'before_header': self.conf_path, 'after_header': self.conf_path,
                     'before': before_conf or '', 'after': desired_conf},
                    {'before_header': self.state_path, 'after_header': self.state_path,
                     'before': dump_json(state) if state else '', 'after': dump_json(new_state)},
                ]
            if module.check_mode:
                return result
            started = time.time()
            if before_conf is not None:
                atomic_write(self.conf_path + '.bak', before_conf)
            atomic_write(self.conf_path, desired_conf)
            ok, message = gateway.nginx_test()
            if not ok:
                note = self.restore(gateway, before_conf, state, reload=False)
                raise SwitchFailed('nginx -t rejected the new upstreams.conf (%s): %s' % (note, message))
            try:
                gateway.nginx_reload()
            except GatewayError as exc:
                raise SwitchFailed('%s (%s)' % (exc, self.restore(gateway, before_conf, state)))
            reloaded_at = time.time()
            self.seconds['reload'] = round(reloaded_at - started, 3)
            try:
                first, all_hits = self.verify(reloaded_at, weights)
            except SwitchFailed as exc:
                raise SwitchFailed('%s (%s)' % (exc, self.restore(gateway, before_conf, state)))
            finally:
                self.seconds['verify'] = round(time.time() - reloaded_at, 3)
            result.update(first_target_seconds=first, all_target_seconds=all_hits)
            new_state['updated_at'] = utc_now()
            write_state(self.state_path, new_state)
            result['audit'] = self.audit(state, new_state, weights, introduced, 'ok')
            return result
        except (SwitchFailed, GatewayError, StateError, OSError) as exc:
            message = str(exc)
            try:
                record = self.audit(state, None, weights, introduced, 'failed: %s' % message)
            except (OSError, StateError) as audit_exc:
                record = None
                message += ' (audit log not written: %s)' % audit_exc
            self.unlock()
            self.seconds['total'] = round(time.time() - self.started, 3)
            msg = '%s %s to %s failed: %s' % (self.params['action'], self.service, '/'.join(introduced), message)
            module.fail_json(msg=msg, audit=record, health=self.health, seconds=self.seconds)


def main():
    argument_spec = dict(
        **SERVICE_STATE_ARGS,
        color=dict(type='str', choices=['blue', 'green']),
        weights=dict(type='dict'),
        upstreams=dict(type='dict', required=True),
        expect=dict(type='dict', options=dict(
            kb_checksum=dict(type='str'),
            model=dict(type='str'),
            version=dict(type='str'),
        )),
        health_timeout=dict(type='int', default=120),
        gateway_container=dict(type='str', required=True),
        verify_url=dict(type='str', default='https://127.0.0.1/health'),
        verify_server_name=dict(type='str'),
        verify_header=dict(type='str', default='X-QA-Color'),
        keepalive=dict(type='int', default=32),
        verify_count=dict(type='int', default=10),
        verify_timeout=dict(type='int', default=30),
        validate_certs=dict(type='bool', default=True),
        ca_path=dict(type='path'),
        lock_token=dict(type='str', no_log=False),
        operator=dict(type='str'),
        action=dict(type='str', default='switch', choices=['switch', 'rollback', 'abort', 'retire']),
        colors_info=dict(type='dict'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[('color', 'weights')],
        required_one_of=[('color', 'weights')],
        supports_check_mode=True,
    )
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib('docker'), exception=DOCKER_IMPORT_ERROR)
    for name in ('health_timeout', 'verify_count', 'verify_timeout'):
        if module.params[name] < (1 if name == 'verify_count' else 0):
            module.fail_json(msg='%s must be positive, got %d' % (name, module.params[name]))
    Switch(module).run()


if __name__ == '__main__':
    main()
