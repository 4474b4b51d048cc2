#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: audit_verify
short_description: Check the hash chain of a service's audit log
version_added: 0.2.0
description:
  - Every line of O(state_dir)/O(service)/audit.log names, as C(prev), the sha256 of the line before it
    (the first names 64 zeros). The module recomputes the chain and fails naming each line where it breaks -
    a line changed, inserted or removed there.
  - Lines written before the chain existed (without C(prev)) are counted as C(unchained) and not judged; a
    line without C(prev) after chained ones is a break.
  - Lines cut off the end leave no trace in the file; compare with the copy the notification webhook received.
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
  fail_on_break:
    description:
      - Fail when the chain is broken. V(false) only reports it in RV(problems).
    type: bool
    default: true
seealso:
  - module: llmops.bluegreen.bluegreen_info
"""

EXAMPLES = r"""
- name: Check the audit log of service qa
  llmops.bluegreen.audit_verify:
    service: qa
"""

RETURN = r"""
ok:
  description: True when no line breaks the chain.
  returned: always
  type: bool
lines:
  description: Lines in the log.
  returned: always
  type: int
  sample: 42
chained:
  description: Lines that carry C(prev).
  returned: always
  type: int
  sample: 40
unchained:
  description: Lines from before the chain existed, at the start of the log.
  returned: always
  type: int
  sample: 2
problems:
  description: Each break, with its line number (1-based) and what is wrong.
  returned: always
  type: list
  elements: dict
  sample: [{"line": 7, "problem": "prev is 3f2a... but line 6 hashes to 9c1d...: line 6 or 7 was changed, inserted or removed"}]
path:
  description: The audit log checked.
  returned: always
  type: str
  sample: /var/lib/llmops/qa/audit.log
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.bluegreen.plugins.module_utils._audit import verify_lines
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import (
    SERVICE_STATE_ARGS, AUDIT_FILE, StateError, service_dir)


def main():
    module = AnsibleModule(
        argument_spec=dict(SERVICE_STATE_ARGS, fail_on_break=dict(type='bool', default=True)),
        supports_check_mode=True,
    )
    try:
        path = '%s/%s' % (service_dir(module.params['state_dir'], module.params['service']), AUDIT_FILE)
        try:
            with open(path, encoding='utf-8', errors='replace') as handle:
                result = verify_lines(handle.read().splitlines())
        except FileNotFoundError:
            result = verify_lines([])
        except OSError as exc:
            raise StateError('cannot read %s: %s' % (path, exc))
    except StateError as exc:
        module.fail_json(msg=str(exc))
    result.update(changed=False, path=path)
    if not result['ok'] and module.params['fail_on_break']:
        module.fail_json(msg='the audit log %s is not intact: %s' % (
            path, '; '.join('line %(line)d: %(problem)s' % p for p in result['problems'])), **result)
    result['msg'] = 'audit log intact: %d lines, %d chained%s' % (
        result['lines'], result['chained'],
        ', %d from before the chain' % result['unchained'] if result['unchained'] else '')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
