#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: bluegreen_audit
short_description: Append one audit record for a change that is not a switch
version_added: 0.3.0
description:
  - Switches, rollbacks, canary steps and reconciles write their own audit lines. Other changes to a service's
    colors - a retire that stops a color or keeps it cold, a rollback that wakes a cold color - write theirs
    with this module, hash-chained like every line of O(state_dir)/O(service)/audit.log.
  - The record is C(time), C(service), C(operator), C(action), C(color), C(result), C(detail) and, when given,
    C(reason); it is also POSTed to O(notify_url).
  - Call it only when the change happened (C(when) on the task that made it) - every call appends.
author:
  - llmops.bluegreen developers (@llmops)
extends_documentation_fragment:
  - llmops.bluegreen.attributes
  - llmops.bluegreen.attributes.service_state
  - llmops.bluegreen.attributes.notify
attributes:
  check_mode:
    support: full
    details:
      - Check mode returns the record and writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Every call records one event.
options:
  action:
    description:
      - What happened. V(retire_cold) - the color's inference server stopped, its qa-api stays;
        V(retire_stop) - the color stopped; V(retire_sleep) - the color's vLLM server was parked with sleep mode
        (its GPU memory freed, the process and the qa-api stay); V(wake) - a cold or parked color's inference
        server serves again.
    type: str
    required: true
    choices: [retire_cold, retire_stop, retire_sleep, wake]
  color:
    description:
      - The color it happened to.
    type: str
    required: true
  result:
    description:
      - V(ok), or what went wrong.
    type: str
    default: ok
  detail:
    description:
      - Facts worth keeping with the record (containers, ages, grace period). Never secrets.
    type: dict
    default: {}
  operator:
    description:
      - Who asked (the AWX user, see the C(llmops.bluegreen.operator) lookup). Defaults to the OS user.
    type: str
seealso:
  - module: llmops.bluegreen.audit_verify
  - module: llmops.bluegreen.bluegreen_switch
"""

EXAMPLES = r"""
- name: Record that blue was kept cold
  llmops.bluegreen.bluegreen_audit:
    service: qa
    action: retire_cold
    color: blue
    detail:
      stopped: [qa-llm-blue]
    operator: "{{ lookup('llmops.bluegreen.operator') }}"
"""

RETURN = r"""
audit:
  description: The record appended (with C(prev), the hash of the line before).
  returned: always
  type: dict
  sample: {"action": "retire_cold", "color": "blue", "result": "ok", "service": "qa", "operator": "awx:admin job 42"}
path:
  description: The audit log.
  returned: always
  type: str
  sample: /var/lib/llmops/qa/audit.log
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.bluegreen.plugins.module_utils._notify import NOTIFY_ARGS, post
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import (
    SERVICE_STATE_ARGS, AUDIT_FILE, StateError, append_audit, current_user, service_dir, utc_now)


def event_record(params, now):
    """The audit record of one event (pure: tested without files)."""
    record = {'time': now, 'service': params['service'], 'operator': params['operator'] or current_user(),
              'action': params['action'], 'color': params['color'], 'result': params['result'],
              'detail': params['detail'] or {}}
    if params['reason']:
        record['reason'] = params['reason']
    return record


def main():
    module = AnsibleModule(
        argument_spec=dict(
            SERVICE_STATE_ARGS, **dict(
                NOTIFY_ARGS,
                action=dict(type='str', required=True, choices=['retire_cold', 'retire_stop', 'retire_sleep', 'wake']),
                color=dict(type='str', required=True),
                result=dict(type='str', default='ok'),
                detail=dict(type='dict', default={}),
                operator=dict(type='str'),
            )),
        supports_check_mode=True,
    )
    params = module.params
    try:
        path = '%s/%s' % (service_dir(params['state_dir'], params['service']), AUDIT_FILE)
        record = event_record(params, utc_now())
        if not module.check_mode:
            record = append_audit(path, record)
    except StateError as exc:
        module.fail_json(msg='%s: fix the state directory (owner, mode, free space) and run the play again' % exc)
    if not module.check_mode:
        warning = post(params['notify_url'], record, params['notify_timeout'], params['notify_validate_certs'])
        if warning:
            module.warn(warning)
    module.exit_json(changed=True, audit=record, path=path)


if __name__ == '__main__':
    main()
