#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: vllm_sleep
short_description: Park a color's vLLM server with sleep mode, or wake it
version_added: 0.4.0
description:
  - Talks to a vLLM server (>= 0.8, started with C(--enable-sleep-mode) and C(VLLM_SERVER_DEV_MODE=1)) from inside
    its container (C(docker exec) running python3 urllib, nothing needs to be published) when O(container) is given,
    or over O(url).
  - O(state=asleep) sends C(POST /sleep?level=1) (weights kept in CPU RAM, GPU memory freed) and returns once
    C(GET /is_sleeping) says true. Refused, with the fix, when the server has no sleep mode (C(/is_sleeping) is 404).
  - O(state=awake) sends C(POST /wake_up) and returns only once C(GET /is_sleeping) says false and C(GET /health)
    answers 200. A server without sleep mode is never asleep, so it is already awake (no change).
  - Changes nothing when the server is already in O(state).
requirements:
  - Docker SDK for Python (C(docker)) when O(container) is used.
author:
  - llmops.bluegreen developers (@llmops)
extends_documentation_fragment:
  - llmops.bluegreen.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads C(/is_sleeping) and reports the change it would make; sends no C(/sleep) or C(/wake_up).
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  state:
    description:
      - V(asleep) parks the server, V(awake) wakes it and waits until it serves again.
    type: str
    required: true
    choices: [asleep, awake]
  container:
    description:
      - Container of the vLLM server; requests run inside it against C(127.0.0.1:)O(port).
    type: str
  url:
    description:
      - Base URL of the server (without C(/v1)), used instead of O(container).
    type: str
  port:
    description:
      - Port of the server inside O(container).
    type: int
    default: 8000
  bearer_file:
    description:
      - A file inside O(container) whose content is the server's API key, sent as a bearer token (the key never
        passes through the module). Only with O(container).
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of O(url).
    type: bool
    default: true
  timeout:
    description:
      - Seconds the server may take to reach O(state) (a wake copies the weights back to the GPU).
    type: int
    default: 300
  interval:
    description:
      - Seconds between two polls of C(/is_sleeping) and C(/health).
    type: int
    default: 2
"""

EXAMPLES = r"""
- name: Park the idle color's vLLM server (after the grace period)
  llmops.bluegreen.vllm_sleep:
    container: "{{ (llmops_service | llmops.bluegreen.names).llm.green }}"
    state: asleep

- name: Wake it before a rollback, and wait until it serves again
  llmops.bluegreen.vllm_sleep:
    container: "{{ (llmops_service | llmops.bluegreen.names).llm.green }}"
    state: awake
    timeout: 600
"""

RETURN = r"""
sleeping:
  description: Whether the server is asleep after the task (in check mode, would be).
  returned: always
  type: bool
  sample: false
was_sleeping:
  description: Whether it was asleep before the task.
  returned: always
  type: bool
  sample: true
sleep_mode:
  description: Whether the server has sleep mode (C(GET /is_sleeping) is not 404).
  returned: always
  type: bool
  sample: true
action:
  description: The call made (or that check mode would make) - V(sleep), V(wake), or null when none.
  returned: always
  type: str
  sample: wake
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
  sample: 4.2
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import DOCKER_IMPORT_ERROR, HAS_DOCKER
from ansible_collections.llmops.bluegreen.plugins.module_utils._probe import ProbeError, Target
from ansible_collections.llmops.bluegreen.plugins.module_utils._vllm_sleep import SleepError, converge


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', required=True, choices=['asleep', 'awake']),
            container=dict(type='str'),
            url=dict(type='str'),
            port=dict(type='int', default=8000),
            bearer_file=dict(type='str'),
            validate_certs=dict(type='bool', default=True),
            timeout=dict(type='int', default=300),
            interval=dict(type='int', default=2),
        ),
        mutually_exclusive=[('container', 'url')],
        required_one_of=[('container', 'url')],
        supports_check_mode=True,
    )
    params = module.params
    if params['container'] and not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib('docker'), exception=DOCKER_IMPORT_ERROR)
    started = time.monotonic()
    try:
        if params['timeout'] < 1 or params['interval'] < 1:
            raise SleepError('timeout and interval must be at least 1 second')
        target = Target(params['container'], params['url'], params['port'], validate_certs=params['validate_certs'],
                        bearer_file=params['bearer_file'])
        result = converge(target, params['state'], params['timeout'], params['interval'], module.check_mode)
    except (SleepError, ProbeError) as exc:
        module.fail_json(msg=str(exc), elapsed=round(time.monotonic() - started, 1))
    result['elapsed'] = round(time.monotonic() - started, 1)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
