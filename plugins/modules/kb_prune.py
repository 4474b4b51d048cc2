#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: kb_prune
short_description: Remove old knowledge base versions, never one in use
version_added: 0.3.0
description:
  - Every document change builds a new version directory C(<kb_root>/<name>/<version>/) (M(llmops.bluegreen.kb_build));
    without pruning they pile up. This module keeps the O(keep) newest versions (by the manifest's C(created_at))
    and every version named in O(protect), and removes the others.
  - A version is first renamed to C(.removing-<version>-...) - from then on no reader can open it by its name - and
    then deleted. Such directories left by a prune that was killed are deleted by the next one.
  - Only directories with a C(manifest.json) are versions; the embedding cache (C(.cache)), builds in progress
    (C(.tmp-*)) and anything else are never touched.
author:
  - llmops.bluegreen developers (@llmops)
extends_documentation_fragment:
  - llmops.bluegreen.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode reports what would be removed and removes nothing.
  diff_mode:
    support: full
    details:
      - The versions before and after.
  idempotent:
    support: full
options:
  path:
    description:
      - The directory of one knowledge base, C(<kb_root>/<name>), holding its versions.
    type: path
    required: true
  keep:
    description:
      - How many of the newest versions stay, whether in use or not (at least 1).
    type: int
    default: 3
  protect:
    description:
      - Versions that stay whatever their age, by name or by path (the versions the colors' containers mount,
        and the one just built). A path outside O(path) is ignored.
    type: list
    elements: str
    default: []
seealso:
  - module: llmops.bluegreen.kb_build
"""

EXAMPLES = r"""
- name: Keep the 3 newest versions of handbook and the ones the colors mount
  llmops.bluegreen.kb_prune:
    path: /var/lib/llmops/qa/kb/handbook
    keep: 3
    protect:
      - /var/lib/llmops/qa/kb/handbook/3f2a9c1d0b7e
      - 9c1d3f2a0b7e
"""

RETURN = r"""
kept:
  description: The versions that stay, newest first.
  returned: always
  type: list
  elements: str
  sample: [3f2a9c1d0b7e, 9c1d3f2a0b7e]
removed:
  description: The versions removed (in check mode, that would be removed), newest first.
  returned: always
  type: list
  elements: str
  sample: [0b7e3f2a9c1d]
leftovers:
  description: C(.removing-*) directories of an earlier, interrupted prune, deleted now.
  returned: always
  type: list
  elements: str
  sample: []
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_retention import (
    list_versions, plan, protected_names, remove_version)
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_store import remove_tree


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            keep=dict(type='int', default=3),
            protect=dict(type='list', elements='str', default=[]),
        ),
        supports_check_mode=True,
    )
    path, keep = module.params['path'], module.params['keep']
    try:
        if not os.path.isdir(path):
            module.exit_json(changed=False, kept=[], removed=[], leftovers=[],
                             msg='%s does not exist: nothing to prune' % path)
        versions, leftovers = list_versions(path)
        kept, removed = plan(versions, keep, protected_names(path, module.params['protect']))
        if not module.check_mode:
            for entry in leftovers:
                remove_tree(os.path.join(path, entry))
            for version in removed:
                remove_version(path, version)
    except ValueError as exc:
        module.fail_json(msg='kb_prune: %s' % exc)
    except OSError as exc:
        module.fail_json(msg='cannot prune %s: %s; fix its owner or mode (the module needs write access there)'
                         % (path, exc))
    result = dict(changed=bool(removed or leftovers), kept=kept, removed=removed, leftovers=leftovers)
    if module._diff:
        result['diff'] = {'before': '\n'.join(sorted(versions)) + '\n', 'after': '\n'.join(sorted(kept)) + '\n',
                          'before_header': path, 'after_header': path}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
