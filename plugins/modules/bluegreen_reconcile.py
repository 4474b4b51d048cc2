#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: bluegreen_reconcile
short_description: Make a service's state.json say what its gateway actually serves
version_added: 0.2.0
description:
  - If a switch is killed, or C(state.json) or the audit log cannot be written, after nginx was reloaded, nginx
    serves the new color while C(state.json) names the old one, and the next release would replace the color
    that is live. Every play that can switch runs this module first.
  - "It reads what the gateway serves from two sources that must agree: the rendered C(upstreams.conf) (its
    C(# weights:) line and its C(upstream llmops_<color>) blocks) and O(probe_count) requests to O(verify_url)
    through the gateway, each on a new connection (the O(verify_header) header and the JSON C(color) of the
    answer). Each color with traffic is asked for its C(/health) from inside the gateway container."
  - "It compares that with C(state.json): the active color, the weights, the servers of each color, and the
    C(release) each color with traffic reports. On a mismatch it rewrites C(state.json) atomically to what is
    served (the serial is incremented; the records of the colors with traffic get C(kb_version), C(kb_checksum),
    C(model), C(version) and C(release) from their C(/health), the other records are kept) and appends an audit
    line with action C(reconcile) naming the state before and after."
  - If the two sources disagree (a file written but not loaded, a color wired to the wrong container) or no
    request through the gateway is answered, it fails naming both and the fix, and changes nothing.
  - "Requests served by a color the file gives no traffic can also be clients failed over by nginx. When a
    server of a routed color does not answer from the gateway (rechecked each second for 11 seconds), it fails
    naming that server. When the servers answer (nginx keeps a server that failed out for its fail_timeout), the
    requests are sent again with O(verify_api_key), which is never failed over, or without one after 11 seconds;
    if they are routed as the file says, it goes on with a warning, else it fails as for a file not loaded."
  - If O(verify_api_key) is given, each deployed color is also requested with the O(verify_header) header and
    must answer as that color.
author:
  - llmops.bluegreen developers (@llmops)
requirements:
  - Docker SDK for Python (C(docker)) on the gateway host.
extends_documentation_fragment:
  - llmops.bluegreen.attributes
  - llmops.bluegreen.attributes.service_state
  - llmops.bluegreen.attributes.gateway
  - llmops.bluegreen.attributes.lease
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads and probes the same, takes no lock, writes nothing, and reports C(changed) and the diff
        as a real run would decide them.
  diff_mode:
    support: full
    details:
      - Shows C(state.json) before and after.
  idempotent:
    support: full
options:
  probe_count:
    description:
      - Requests sent through the gateway to see which color serves; all must name a color the config routes.
    type: int
    default: 10
seealso:
  - module: llmops.bluegreen.bluegreen_switch
  - module: llmops.bluegreen.bluegreen_lock
"""

EXAMPLES = r"""
- name: Record what the gateway serves before deciding a release
  llmops.bluegreen.bluegreen_reconcile:
    service: qa
    gateway_container: qa-gateway
    verify_url: https://127.0.0.1:8443/health
    ca_path: /var/lib/llmops/qa/gateway/tls/gateway.crt
    lock_token: "{{ release_lock.token }}"
  register: reconcile
"""

RETURN = r"""
active:
  description: Color the gateway serves (during a split, the stable color), or null when it serves none.
  returned: success
  type: str
  sample: green
weights:
  description: Weights the gateway routes by, per deployed color (empty when it serves none).
  returned: success
  type: dict
  sample: {"blue": 0, "green": 100}
seen:
  description: How many of the O(probe_count) requests each color served.
  returned: success
  type: dict
  sample: {"green": 10}
mismatches:
  description: What C(state.json) said differently from what is served; empty when they agree.
  returned: success
  type: list
  elements: str
  sample: ["state.json names active blue, the gateway serves green"]
state:
  description: Content of C(state.json) after the task (in check mode, what it would be), or null before any switch.
  returned: success
  type: dict
audit:
  description: The audit record appended.
  returned: when a repair was made
  type: dict
msg:
  description: What was found and done.
  returned: always
  type: str
  sample: "repaired state.json of qa: it named active blue (serial 4), the gateway serves green; now serial 5"
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import (
    DOCKER_IMPORT_ERROR, HAS_DOCKER, Gateway, GatewayError)
from ansible_collections.llmops.bluegreen.plugins.module_utils._lock import LEASE_ARGS, Lease, LockError
from ansible_collections.llmops.bluegreen.plugins.module_utils._reconcile import (
    ReconcileError, StrayTraffic, audit_record, compare, parse_upstreams, repaired, served, stray_text)
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import (
    SERVICE_STATE_ARGS, AUDIT_FILE, NGINX_DIR, STATE_FILE, UPSTREAMS_FILE, StateError, append_audit, current_user,
    dump_json, read_state, read_text, service_dir, utc_now, write_state)
from ansible_collections.llmops.bluegreen.plugins.module_utils._switch import GATEWAY_ARGS, Verifier, file_diff, targets

# Seconds: nginx keeps an upstream server that failed out for fail_timeout (10 s by default, the gateway's).
FAILOVER_SETTLE = 11


def forced_problems(verifier, routing, header):
    """With an operator key: each deployed color, forced with the header, must answer as itself."""
    problems = []
    for color in sorted(routing['upstreams']):
        status, value, body, error = verifier.probe(color)
        if not (status == 200 and value == color and body == color):
            problems.append('a request with %s: %s got HTTP %s, %s %s, body color %s %s'
                            % (header, color, status, header, value, body, error or ''))
    return problems


def routed_health(gateway, conf):
    """``{color: {server: /health}}`` and ``{server: error}`` of the servers of the colors the file routes."""
    health, down = {}, {}
    for color in targets(conf['weights']):
        for server in conf['upstreams'][color]:
            data, error = gateway.upstream_health(server)
            if error:
                down[server] = error
            else:
                health.setdefault(color, {})[server] = data
    return health, down


def observe(params, conf, verifier, gateway):
    """The routing nginx serves, the routed colors' /health, and warnings.

    Requests served by a color the file gives no traffic are told apart: the routed servers
    do not answer (clients failed over: fails), or answered again a moment ago (nginx keeps a
    failed server out for fail_timeout: tolerated, with a warning, once requests that are
    never failed over, or a later round, are routed as the file says), or nginx serves
    another file (fails).
    """
    def plain():
        return [verifier.probe() for dummy in range(params['probe_count'])]

    url = params['verify_url']
    health, down = routed_health(gateway, conf)
    try:
        routing = served(conf, plain(), url)
    except StrayTraffic as exc:
        stray = exc
    else:
        return routing, health, ['%s (%s) %s: its record keeps the recorded versions' % (color, server, down[server])
                                 for color in routing['active_colors'] for server in conf['upstreams'][color]
                                 if server in down]
    deadline = time.monotonic() + FAILOVER_SETTLE
    while down and time.monotonic() < deadline:
        time.sleep(1)
        health, down = routed_health(gateway, conf)
    if down:
        raise ReconcileError(stray_text(stray, down=down))
    try:
        if params['verify_api_key']:
            routing = served(conf, [verifier.probe(keyed=True) for dummy in range(params['probe_count'])], url)
        else:
            time.sleep(FAILOVER_SETTLE)
            routing = served(conf, plain(), url)
    except StrayTraffic:
        raise ReconcileError(stray_text(stray, loaded=False if params['verify_api_key'] else None))
    return routing, health, ['%s; the servers of %s answer from the gateway now: nginx had taken them out after a '
                             'failed request (it keeps a failed server out for its fail_timeout), and %s'
                             % (stray.summary(), ', '.join(routing['active_colors']),
                                'requests with the operator key are routed as the file says'
                                if params['verify_api_key'] else 'a later round was routed as the file says')]


def reconcile(module):
    params = module.params
    started = time.time()
    service = params['service']
    directory = service_dir(params['state_dir'], service)
    state_path = '%s/%s' % (directory, STATE_FILE)
    conf_path = '%s/%s/%s' % (directory, NGINX_DIR, UPSTREAMS_FILE)
    lease = Lease(directory, service, 'reconcile', params['lock_token'], 300, module.check_mode, params['operator'])
    lease.take()
    try:
        state = read_state(state_path)
        text = read_text(conf_path)
        if text is None:
            if state is None:
                return dict(changed=False, active=None, weights={}, seen={}, mismatches=[], state=None,
                            msg='%s has no gateway config and no state yet: nothing to reconcile' % service)
            raise ReconcileError('%s is missing but %s exists; rerun the llmops.bluegreen.gateway role (it writes '
                                 'the bootstrap file), then rerun' % (conf_path, state_path))
        conf = parse_upstreams(text)
        verifier = Verifier(params)
        gateway = Gateway(params['gateway_container'])
        routing, health, warnings = observe(params, conf, verifier, gateway)
        if params['verify_api_key']:
            wrong = forced_problems(verifier, routing, params['verify_header'])
            if wrong:
                raise ReconcileError('cannot tell what the gateway serves: upstreams.conf routes each deployed color '
                                     'by the %s header, but %s; check the upstream servers'
                                     % (params['verify_header'], '; '.join(wrong)))
        for warning in warnings:
            module.warn(warning)
        problems = compare(state, routing, health)
        after = repaired(service, state, routing, health, utc_now()) if problems else state
        result = dict(changed=bool(problems), active=(after or {}).get('active'), weights=routing['weights'],
                      seen=routing['seen'], mismatches=problems, state=after)
        if not problems:
            result['msg'] = 'state.json of %s matches what the gateway serves (%s)' % (
                service, (state or {}).get('active') or 'no color')
            return result
        result['msg'] = ('%s state.json of %s: it named active %s (serial %s), the gateway serves %s; %s serial %s: %s'
                         % ('would repair' if module.check_mode else 'repaired', service,
                            (state or {}).get('active') or 'none', (state or {}).get('serial'),
                            after['active'] or 'no color', 'would be' if module.check_mode else 'now',
                            after['serial'], '; '.join(problems)))
        if module._diff:
            result['diff'] = file_diff(state_path, state and dump_json(state), dump_json(after))
        record = audit_record(service, params['operator'] or current_user(), state, after, problems,
                              time.time() - started, utc_now())
        result['audit'] = record
        if not module.check_mode:
            write_state(state_path, after)
            append_audit('%s/%s' % (directory, AUDIT_FILE), record)
        return result
    finally:
        warning = lease.drop()
        if warning:
            module.warn(warning)


def main():
    argument_spec = dict(SERVICE_STATE_ARGS, **GATEWAY_ARGS)
    argument_spec.update(LEASE_ARGS)
    argument_spec.update(probe_count=dict(type='int', default=10))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib('docker'), exception=DOCKER_IMPORT_ERROR)
    if module.params['probe_count'] < 1:
        module.fail_json(msg='probe_count must be at least 1, got %d' % module.params['probe_count'])
    try:
        module.exit_json(**reconcile(module))
    except ReconcileError as exc:
        module.fail_json(msg='reconcile %s: %s' % (module.params['service'], exc))
    except (LockError, StateError, GatewayError, OSError) as exc:
        module.fail_json(msg=str(exc))


if __name__ == '__main__':
    main()
