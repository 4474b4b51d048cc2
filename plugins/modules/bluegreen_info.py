#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: bluegreen_info
short_description: Read the blue/green state, lock and audit history of a service
version_added: 0.1.0
description:
  - Reads O(state_dir)/O(service)/state.json, the lock and the last O(audit_lines) records of audit.log,
    as written by M(llmops.bluegreen.bluegreen_switch) and M(llmops.bluegreen.bluegreen_lock).
  - Before the first switch the state is null; the module never fails for missing files.
author:
  - llmops.bluegreen developers (@llmops)
extends_documentation_fragment:
  - llmops.bluegreen.attributes
  - llmops.bluegreen.attributes.service_state
attributes:
  check_mode:
    support: full
    details:
      - The module only reads.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  audit_lines:
    description:
      - Number of most recent audit records to return (0 for none).
    type: int
    default: 10
seealso:
  - module: llmops.bluegreen.bluegreen_switch
  - module: llmops.bluegreen.bluegreen_lock
"""

EXAMPLES = r"""
- name: Read the state of service qa
  llmops.bluegreen.bluegreen_info:
    service: qa
  register: bg

- name: Show the active color
  ansible.builtin.debug:
    msg: "{{ bg.active | default('none', true) }} (previous {{ bg.previous }})"
"""

RETURN = r"""
state:
  description: Content of state.json, or null before the first switch.
  returned: always
  type: dict
  sample: {"schema": 1, "service": "qa", "active": "green", "previous": "blue",
           "weights": {"blue": 0, "green": 100}, "serial": 3, "updated_at": "2026-11-23T01:23:45Z",
           "colors": {"blue": {"upstreams": ["qa-qa-blue:8000"], "kb_checksum": "..."}}}
active:
  description: Active color, or null before the first switch.
  returned: always
  type: str
  sample: green
previous:
  description: Color active before the last full switch, or null.
  returned: always
  type: str
  sample: blue
weights:
  description: Current weights per deployed color, or null.
  returned: always
  type: dict
  sample: {"blue": 0, "green": 100}
audit:
  description: The last O(audit_lines) audit records, oldest first.
  returned: always
  type: list
  elements: dict
lock:
  description:
    - The current lease without its token, or null when the service is not locked.
    - C(expired) is true past its expiry; C(abandoned) says why the next caller would take it over (its lease
      expired, or its holder process on this host is gone), or is null while it is held.
  returned: always
  type: dict
  sample: {"holder": "root@gw1", "operation": "deploy", "pid": 4242, "pid_of": "play", "pid_start": 81234,
           "since": "2026-11-23T01:00:00Z", "expires": "2026-11-23T02:00:00Z", "expired": false,
           "abandoned": "the ansible-playbook process 4242 that held it is gone"}
upstreams_conf:
  description: Content of the current upstreams.conf, or null when there is none.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.bluegreen.plugins.module_utils._lock import abandoned, is_expired, public, read_lock
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import (
    SERVICE_STATE_ARGS,
    AUDIT_FILE,
    LOCK_FILE,
    NGINX_DIR,
    STATE_FILE,
    UPSTREAMS_FILE,
    StateError,
    read_audit,
    read_state,
    read_text,
    service_dir,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **SERVICE_STATE_ARGS,
            audit_lines=dict(type='int', default=10),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        directory = service_dir(params['state_dir'], params['service'])
        state = read_state('%s/%s' % (directory, STATE_FILE))
        audit = read_audit('%s/%s' % (directory, AUDIT_FILE), params['audit_lines'])
        lock = read_lock('%s/%s' % (directory, LOCK_FILE))
        upstreams = read_text('%s/%s/%s' % (directory, NGINX_DIR, UPSTREAMS_FILE))
    except StateError as exc:
        module.fail_json(msg=str(exc))
    if lock is not None:
        # The token is the holder's handle; readers need not see it.
        lock = dict(public(lock), expired=is_expired(lock), abandoned=abandoned(lock))
    module.exit_json(
        changed=False, state=state, audit=audit, lock=lock, upstreams_conf=upstreams,
        active=(state or {}).get('active'), previous=(state or {}).get('previous'),
        weights=(state or {}).get('weights'),
    )


if __name__ == '__main__':
    main()
