#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: bluegreen_lock
short_description: Take or release the lease lock of a blue/green service
version_added: 0.1.0
description:
  - One release, rollback or switch at a time per service. The lock is the file
    O(state_dir)/O(service)/lock holding JSON C(token), C(holder) (user@host), C(pid), C(pid_of), C(pid_start),
    C(operation), C(since) and C(expires) (the collection's docs/locking.md).
  - "C(pid) is the ansible-playbook (or ansible-runner) process running the play when it runs on this host
    (C(pid_of: play)): the lease then lives as long as the play, not as long as this task. Otherwise (an ad-hoc
    C(ansible) call, a controller reached over SSH) it is this module's process, for information only
    (C(pid_of: null)), and the lease ends only by release or expiry."
  - O(state=present) creates it atomically and exclusively. If another live lease holds it the task
    fails at once, naming holder, operation and since. An abandoned lease is taken over, and the takeover is
    appended to the audit log (action C(takeover), naming the old holder and why) - a lease is abandoned when
    it expired, or when it was taken on this host and the process that C(pid) and C(pid_start) name is gone.
  - Passing the O(token) of the current lease re-enters it and renews its expiry (not reported as a change).
  - O(state=absent) releases the lease given its O(token), or any lease with O(force=true) (after a
    crashed run; audited as action C(unlock) naming the removed holder). Releasing a free lock changes nothing.
author:
  - llmops.bluegreen developers (@llmops)
extends_documentation_fragment:
  - llmops.bluegreen.attributes
  - llmops.bluegreen.attributes.service_state
attributes:
  check_mode:
    support: full
    details:
      - Check mode writes nothing; it fails or reports a change exactly as a real run would.
  diff_mode:
    support: full
  idempotent:
    support: partial
    details:
      - Every acquisition of a free lock is a new lease with a new token.
options:
  state:
    description:
      - V(present) takes (or re-enters) the lease, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  operation:
    description:
      - What the holder is doing, shown to anyone who finds the service locked.
    type: str
    default: deploy
  ttl:
    description:
      - Seconds until the lease expires and may be taken over by another caller.
    type: int
    default: 3600
  token:
    description:
      - Token of a lease held before, to re-enter it (O(state=present)) or to release it (O(state=absent)).
    type: str
  force:
    description:
      - With O(state=present), take the lock even from a live holder (audited as a takeover).
      - With O(state=absent), remove the lock whoever holds it (audited as an unlock).
    type: bool
    default: false
  operator:
    description:
      - Who asked, for the audit line of a takeover or a forced unlock. Defaults to the OS user running the module.
    type: str
seealso:
  - module: llmops.bluegreen.bluegreen_switch
  - module: llmops.bluegreen.bluegreen_info
"""

EXAMPLES = r"""
- name: Lock the service for the whole release
  llmops.bluegreen.bluegreen_lock:
    service: qa
    operation: deploy
    ttl: 3600
  register: release_lock

- name: Release it
  llmops.bluegreen.bluegreen_lock:
    service: qa
    state: absent
    token: "{{ release_lock.token }}"

- name: Remove the lock a crashed run left behind
  llmops.bluegreen.bluegreen_lock:
    service: qa
    state: absent
    force: true
"""

RETURN = r"""
token:
  description: Token of the lease held after the task (pass it to release or to re-enter); null after a release.
  returned: success
  type: str
  sample: 4c1f0f3e6d9b4a3c8e2a5b7d9f1e3c5a
holder:
  description:
    - With O(state=present), the lease now held.
    - With O(state=absent), the lease that was removed, or null when the lock was free.
  returned: success
  type: dict
  sample: {"holder": "root@gw1", "operation": "deploy", "pid": 4242, "pid_of": "play", "pid_start": 81234,
           "since": "2026-11-23T01:00:00Z", "expires": "2026-11-23T02:00:00Z",
           "token": "4c1f0f3e6d9b4a3c8e2a5b7d9f1e3c5a"}
took_over:
  description: The abandoned (or forced) lease this task replaced, with the C(reason), without its token.
  returned: when a lease was taken over
  type: dict
  sample: {"holder": "root@gw1", "operation": "deploy", "pid": 4242, "pid_of": "play",
           "reason": "the ansible-playbook process 4242 that held it is gone"}
lock_file:
  description: Path of the lock file.
  returned: always
  type: str
  sample: /var/lib/llmops/qa/lock
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.bluegreen.plugins.module_utils._lock import (
    LockError,
    acquire,
    read_lock,
    release,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import (
    SERVICE_STATE_ARGS,
    LOCK_FILE,
    StateError,
    ensure_dir,
    service_dir,
)


def _text(lock):
    return json.dumps(lock, indent=2, sort_keys=True) + '\n' if lock else ''


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **SERVICE_STATE_ARGS,
            state=dict(type='str', default='present', choices=['present', 'absent']),
            operation=dict(type='str', default='deploy'),
            ttl=dict(type='int', default=3600),
            token=dict(type='str', no_log=False),
            force=dict(type='bool', default=False),
            operator=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params['ttl'] < 1:
        module.fail_json(msg='ttl must be at least 1 second, got %d' % params['ttl'])
    try:
        directory = service_dir(params['state_dir'], params['service'])
        path = '%s/%s' % (directory, LOCK_FILE)
        before = read_lock(path)
        if params['state'] == 'present':
            if not module.check_mode:
                ensure_dir(directory)
            changed, lock = acquire(path, params['service'], params['operation'], ttl=params['ttl'],
                                    token=params['token'], force=params['force'], check_mode=module.check_mode,
                                    operator=params['operator'])
            result = dict(changed=changed, token=lock['token'], holder=lock, lock_file=path)
            if lock.get('took_over'):
                result['took_over'] = lock['took_over']
                module.warn('took over the lock of %s (operation %s, pid %s, since %s): %s'
                            % tuple(lock['took_over'].get(key) for key in ('holder', 'operation', 'pid', 'since',
                                                                           'reason')))
            after = lock
        else:
            if before is None:
                module.exit_json(changed=False, token=None, holder=None, lock_file=path)
            changed, removed = release(path, params['service'], token=params['token'], force=params['force'],
                                       check_mode=module.check_mode, operator=params['operator'])
            result = dict(changed=changed, token=None, holder=removed, lock_file=path)
            after = None
    except (LockError, StateError, OSError) as exc:
        module.fail_json(msg=str(exc))
    if module._diff and result['changed']:
        result['diff'] = dict(before=_text(before), after=_text(after), before_header=path, after_header=path)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
