#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: kb_checksum
short_description: Fingerprint a directory and verify it against its manifest
version_added: 0.1.0
description:
  - Computes the fingerprint of a directory, for example a knowledge base version directory built by
    M(llmops.bluegreen.kb_build).
  - The fingerprint is the sha256 over every regular file below O(path), sorted by relative POSIX path,
    of C(relpath + NUL + sha256(file) + newline). A file named C(manifest.json) directly in O(path) is
    left out. Symlinks and special files are an error.
  - With O(verify=true) the per-file sha256 values are compared with the manifest's C(files) map and the
    fingerprint with the manifest's C(checksum); any difference fails the task and names each changed,
    added or removed file.
  - The module only reads; it never changes anything.
author:
  - llmops.bluegreen developers (@llmops)
extends_documentation_fragment:
  - llmops.bluegreen.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module is read-only, so check mode computes and verifies exactly as a normal run.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  path:
    description:
      - Directory to fingerprint.
    type: path
    required: true
  verify:
    description:
      - Compare the directory with O(manifest) and fail on any difference.
    type: bool
    default: false
  manifest:
    description:
      - Manifest (JSON with C(files) and C(checksum)) to verify against.
      - Defaults to C(manifest.json) in O(path).
      - Only used when O(verify=true).
    type: path
  exclude:
    description:
      - Shell patterns (fnmatch) of files and directories to leave out, matched against each name and each
        path relative to O(path); an excluded directory is not entered.
      - For source trees with generated files, for example C([__pycache__, "*.pyc", wheels]).
    type: list
    elements: str
    default: []
seealso:
  - module: llmops.bluegreen.kb_build
"""

EXAMPLES = r"""
- name: Fingerprint a knowledge base version
  llmops.bluegreen.kb_checksum:
    path: /var/lib/llmops/qa/kb/handbook/3fa2c1d9e8b7
  register: kb_sum

- name: Verify a knowledge base version against its manifest
  llmops.bluegreen.kb_checksum:
    path: /var/lib/llmops/qa/kb/handbook/3fa2c1d9e8b7
    verify: true
"""

RETURN = r"""
checksum:
  description: Fingerprint of O(path).
  returned: success
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
file_count:
  description: Number of files in the fingerprint (C(manifest.json) at the root excluded).
  returned: success
  type: int
  sample: 2
manifest:
  description: Path of the manifest that was verified against.
  returned: when O(verify=true)
  type: str
  sample: /var/lib/llmops/qa/kb/handbook/3fa2c1d9e8b7/manifest.json
verified:
  description: V(true) when the directory matches the manifest (the task fails otherwise).
  returned: when O(verify=true)
  type: bool
  sample: true
mismatches:
  description:
    - Files that differ from the manifest. Returned in the failure result of a verification.
  returned: on verification failure
  type: dict
  contains:
    changed:
      description: Relative paths whose sha256 differs from the manifest.
      type: list
      elements: str
      returned: always
    added:
      description: Relative paths present in the directory but not in the manifest.
      type: list
      elements: str
      returned: always
    removed:
      description: Relative paths listed in the manifest but missing from the directory.
      type: list
      elements: str
      returned: always
  sample: {"changed": ["chunks.jsonl"], "added": [], "removed": []}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import (
    FingerprintError,
    MANIFEST_NAME,
    compare_digests,
    fingerprint,
)


class VerifyError(Exception):
    """The manifest cannot be used for verification."""


def load_manifest(manifest_path):
    """Read a manifest and return ``(files map, checksum)``; raise VerifyError with a fix."""
    if not os.path.isfile(manifest_path):
        raise VerifyError('manifest %s does not exist: build the directory with llmops.bluegreen.kb_build '
                          'or pass manifest=' % manifest_path)
    try:
        with open(manifest_path, 'rb') as handle:
            data = json.loads(handle.read().decode('utf-8'))
    except (IOError, OSError, ValueError) as exc:
        raise VerifyError('manifest %s is not readable JSON: %s' % (manifest_path, to_native(exc)))
    if not isinstance(data, dict):
        raise VerifyError('manifest %s is not a JSON object' % manifest_path)
    files = data.get('files')
    checksum = data.get('checksum')
    if files is None and checksum is None:
        raise VerifyError('manifest %s has neither "files" nor "checksum": it was not finalized by '
                          'llmops.bluegreen.kb_build' % manifest_path)
    if files is not None and not (isinstance(files, dict)
                                  and all(isinstance(v, str) for v in files.values())):
        raise VerifyError('manifest %s: "files" must map relative paths to sha256 strings' % manifest_path)
    return files, checksum


def verify_directory(path, manifest_path, checksum, digests):
    """Return ``(mismatches, message)``; message is None when everything matches."""
    files, expected_checksum = load_manifest(manifest_path)
    actual = dict(digests)
    if files is not None:
        mismatches = compare_digests(files, actual)
    else:
        mismatches = {'changed': [], 'added': [], 'removed': []}
    problems = []
    for kind in ('changed', 'added', 'removed'):
        if mismatches[kind]:
            problems.append('%s: %s' % (kind, ', '.join(mismatches[kind])))
    if expected_checksum is not None and expected_checksum != checksum:
        problems.append('checksum %s != manifest checksum %s' % (checksum, expected_checksum))
    if not problems:
        return mismatches, None
    return mismatches, ('%s does not match manifest %s: %s' % (path, manifest_path, '; '.join(problems)))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            verify=dict(type='bool', default=False),
            manifest=dict(type='path'),
            exclude=dict(type='list', elements='str', default=[]),
        ),
        supports_check_mode=True,
    )
    path = module.params['path']
    if not os.path.isdir(path):
        module.fail_json(msg='path %s is not a directory' % path)

    try:
        checksum, digests = fingerprint(path, exclude=module.params['exclude'])
    except FingerprintError as exc:
        module.fail_json(msg=to_native(exc))

    result = dict(changed=False, checksum=checksum, file_count=len(digests))
    if module.params['verify']:
        manifest_path = module.params['manifest'] or os.path.join(path, MANIFEST_NAME)
        result['manifest'] = manifest_path
        try:
            mismatches, problem = verify_directory(path, manifest_path, checksum, digests)
        except VerifyError as exc:
            module.fail_json(msg=to_native(exc), verified=False, **result)
        if problem:
            module.fail_json(msg=problem, verified=False, mismatches=mismatches, **result)
        result['verified'] = True
    module.exit_json(**result)


if __name__ == '__main__':
    main()
