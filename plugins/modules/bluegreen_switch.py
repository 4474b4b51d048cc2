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
  - If C(state.json) cannot be written after the reload, nginx serves the new color while the state names
    the old one; the task fails saying so, and M(llmops.bluegreen.bluegreen_reconcile) (the first step of every
    play that can switch) records what is served before anything else is decided.
  - State lives in O(state_dir)/O(service)/ as described in the collection's docs/contracts-state.md.
author:
  - llmops.bluegreen developers (@llmops)
requirements:
  - Docker SDK for Python (C(docker)) on the gateway host.
extends_documentation_fragment:
  - llmops.bluegreen.attributes
  - llmops.bluegreen.attributes.service_state
  - llmops.bluegreen.attributes.gateway
  - llmops.bluegreen.attributes.lease
  - llmops.bluegreen.attributes.notify
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
      release:
        description: Expected C(release) (the color's release fingerprint, a sha256 hex).
        type: str
  health_timeout:
    description:
      - Seconds to wait for the target colors to become C(ready) (polled every second).
      - A color that is C(ready) but reports other values than O(expect) fails at once.
    type: int
    default: 120
  keepalive:
    description:
      - Idle keepalive connections from each gateway worker to each color's upstream.
      - Passed to nginx as it is; nginx -t decides whether it is valid (it must be at least 1).
    type: int
    default: 32
  failover:
    description:
      - With two colors deployed, a client request whose color has no server that accepts a
        connection (its host or container is down) goes to the other color's servers (nginx C(backup)).
      - Requests with an operator key (the release's probes, the gate, C(X-QA-Color)) never fail over.
      - V(false) renders the colors' own upstreams only; such a request then fails with 502.
    type: bool
    default: true
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
  action:
    description:
      - Kind of change recorded in the audit log and as the lock's operation.
    type: str
    choices: [switch, rollback, abort, retire]
    default: switch
  colors_info:
    description:
      - 'Versions to record per color in the state, for example
        C({"green": {"kb_version": "3fa2c1d9e8b7", "kb_checksum": "...", "model": "...", "version": "...",
        "release": "<sha256 hex>"}}).'
      - By default a gated color's record (C(kb_version), C(kb_checksum), C(model), C(version), C(release)) is
        taken from its C(/health) and other colors keep their record.
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
    verify_api_key: "{{ operator_api_key }}"
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
    DOCKER_IMPORT_ERROR, HAS_DOCKER, Gateway, GatewayError)
from ansible_collections.llmops.bluegreen.plugins.module_utils._lock import LEASE_ARGS, Lease, LockError
from ansible_collections.llmops.bluegreen.plugins.module_utils._notify import NOTIFY_ARGS, post
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import (
    SERVICE_STATE_ARGS, AUDIT_FILE, NGINX_DIR, STATE_FILE, UPSTREAMS_FILE, StateError, append_audit, current_user,
    dump_json, read_state, read_text, service_dir, utc_now, write_state)
from ansible_collections.llmops.bluegreen.plugins.module_utils._switch import (
    GATEWAY_ARGS, SwitchFailed, SwitchInputError, Verifier, apply_config, audit_record, desired_weights, file_diff,
    gate, new_roles, new_state, targets, unchanged)
from ansible_collections.llmops.bluegreen.plugins.module_utils._upstreams import UpstreamError, full_weights, render


class Switch(object):

    def __init__(self, module):
        self.module = module
        self.params = params = module.params
        self.started = time.time()
        self.seconds = {'health': 0.0, 'reload': 0.0, 'verify': 0.0, 'total': 0.0}
        self.service = params['service']
        self.dir = service_dir(params['state_dir'], self.service)
        self.conf_path = '%s/%s/%s' % (self.dir, NGINX_DIR, UPSTREAMS_FILE)
        self.state_path = '%s/%s' % (self.dir, STATE_FILE)
        self.health = {}
        self.verifier = Verifier(params)
        ttl = params['health_timeout'] + params['verify_timeout'] + 300
        self.lease = Lease(self.dir, self.service, params['action'], params['lock_token'], ttl,
                           module.check_mode, params['operator'])

    def audit(self, state, after, weights, introduced, result):
        """Append the audit line, then send it to the webhook (a failed webhook is only a warning)."""
        params = self.params
        record = audit_record(self.service, params['operator'] or current_user(), params['action'],
                              state, after, weights, introduced, result, time.time() - self.started, utc_now())
        if params['reason']:
            record['reason'] = params['reason']
        if not self.module.check_mode:
            record = append_audit('%s/%s' % (self.dir, AUDIT_FILE), record)
            warning = post(params['notify_url'], record, params['notify_timeout'], params['notify_validate_certs'])
            if warning:
                self.module.warn(warning)
        return record

    def run(self):
        params = self.params
        weights = desired_weights(self.service, params['upstreams'], params['color'], params['weights'])
        render(self.service, params['upstreams'], weights, params['keepalive'])  # refuse bad input before the lock
        weights = full_weights(params['upstreams'], weights)
        self.lease.take()
        try:
            result = self.switch(weights)
        finally:
            warning = self.lease.drop()
            if warning:
                self.module.warn(warning)
        self.seconds['total'] = round(time.time() - self.started, 3)
        result['seconds'] = self.seconds
        return result

    def switch(self, weights):
        module, params = self.module, self.params
        state = read_state(self.state_path)
        before_conf = read_text(self.conf_path)
        active, previous, introduced = new_roles(state, weights)
        desired_conf = render(self.service, params['upstreams'], weights, params['keepalive'],
                              canary=introduced[0] if len(targets(weights)) > 1 else None,
                              failover=params['failover'])
        result = {'changed': False, 'upstreams_conf': self.conf_path, 'active': active, 'weights': weights}
        if unchanged(state, before_conf, desired_conf, params['upstreams'], weights, active, introduced,
                     params['expect']):
            result.update(previous=state.get('previous'), serial=state.get('serial'), state=state)
            return result
        try:
            gateway = Gateway(params['gateway_container'])
        except GatewayError:
            if not module.check_mode:
                raise
            gateway = None  # check mode before the first deploy: the switch is still shown
        try:
            gate_started = time.time()
            try:
                if gateway is None:
                    raise SwitchFailed('gateway container %s does not exist yet' % params['gateway_container'])
                gate(gateway.upstream_health, params['upstreams'], weights, introduced, params['expect'],
                     0 if module.check_mode else params['health_timeout'], self.health, time.time, time.sleep)
            except SwitchFailed as exc:
                if not module.check_mode:
                    raise
                module.warn('check mode: the switch would fail now unless the target becomes healthy first: %s' % exc)
            finally:
                self.seconds['health'] = round(time.time() - gate_started, 3)
            after = new_state(self.service, state, params['upstreams'], weights, active, previous, self.health,
                              params['colors_info'], utc_now())
            result.update(changed=True, previous=previous, serial=after['serial'], state=after, health=self.health)
            if module._diff:
                result['diff'] = [file_diff(self.conf_path, before_conf, desired_conf),
                                  file_diff(self.state_path, state and dump_json(state), dump_json(after))]
            if module.check_mode:
                return result
            result['first_target_seconds'], result['all_target_seconds'] = apply_config(
                gateway, self.conf_path, before_conf, desired_conf, state, weights, self.verifier.hits,
                self.verifier.each, params['verify_count'], self.seconds)
            after['updated_at'] = utc_now()
            try:
                write_state(self.state_path, after)
            except (OSError, StateError) as exc:
                raise SwitchFailed(
                    'nginx now serves %s, but %s could not be written (%s) and still names %s; fix the cause, then run '
                    'llmops.bluegreen.bluegreen_reconcile (every deploy and rollback starts with it) to record what '
                    'is served' % ('/'.join(targets(weights)), self.state_path, exc, (state or {}).get('active')))
            result['audit'] = self.audit(state, after, weights, introduced, 'ok')
            return result
        except (SwitchFailed, GatewayError, StateError, OSError) as exc:
            message = str(exc)
            try:
                record = self.audit(state, None, weights, introduced, 'failed: %s' % message)
            except (OSError, StateError) as audit_exc:
                record = None
                message += ' (audit log not written: %s)' % audit_exc
            self.seconds['total'] = round(time.time() - self.started, 3)
            raise SwitchFailed('%s %s to %s failed: %s' % (params['action'], self.service, '/'.join(introduced), message),
                               audit=record, health=self.health, seconds=self.seconds)


def main():
    argument_spec = dict(
        SERVICE_STATE_ARGS, **GATEWAY_ARGS)
    argument_spec.update(LEASE_ARGS)
    argument_spec.update(NOTIFY_ARGS)
    argument_spec.update(
        color=dict(type='str', choices=['blue', 'green']),
        weights=dict(type='dict'),
        upstreams=dict(type='dict', required=True),
        expect=dict(type='dict', options=dict(
            kb_checksum=dict(type='str'),
            model=dict(type='str'),
            version=dict(type='str'),
            release=dict(type='str'),
        )),
        health_timeout=dict(type='int', default=120),
        keepalive=dict(type='int', default=32),
        failover=dict(type='bool', default=True),
        verify_count=dict(type='int', default=10),
        verify_timeout=dict(type='int', default=30),
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
    try:
        module.exit_json(**Switch(module).run())
    except SwitchFailed as exc:
        module.fail_json(msg=str(exc), **exc.result)
    except (SwitchInputError, UpstreamError, LockError, StateError, GatewayError, OSError) as exc:
        module.fail_json(msg=str(exc))


if __name__ == '__main__':
    main()
