#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: bundle_check
short_description: Verify an unpacked air-gap bundle against its checksums and read its manifest
version_added: 0.1.0
description:
  - Reads an unpacked air-gap bundle (the directory C(make bundle) packs and C(scripts/bundle.py unpack) unpacks,
    docs/air-gap.md), checks the sha256 of its manifest C(bundle.json) and of the files selected by O(verify)
    against its C(SHA256SUMS), and returns the manifest.
  - A file whose content differs, a listed file that is missing and a file that is not listed fail the task,
    each named. So does a manifest that lacks one of O(images) or O(packages), naming what is missing and the
    commit the bundle was made from.
  - The module only reads; it never changes anything.
author:
  - llmops.bluegreen developers (@llmops)
extends_documentation_fragment:
  - llmops.bluegreen.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module is read-only, so check mode verifies exactly as a normal run.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  path:
    description:
      - The unpacked bundle directory (it holds C(bundle.json) and C(SHA256SUMS)).
    type: path
    required: true
  verify:
    description:
      - Relative paths or directories of the bundle whose files are checked, for example C([debs]) or the archives
        about to be loaded. C(bundle.json) is always checked.
      - Omitted, every file is checked (a multi-GB bundle takes a while); V([]) checks the manifest only.
    type: list
    elements: str
  images:
    description:
      - Image references (C(name:tag)) the bundle must hold; their IDs and archives are returned.
    type: list
    elements: str
    default: []
  packages:
    description:
      - Debian packages the bundle's apt repository must have been made for.
    type: list
    elements: str
    default: []
seealso:
  - module: llmops.bluegreen.kb_checksum
"""

EXAMPLES = r"""
- name: Verify a whole bundle
  llmops.bluegreen.bundle_check:
    path: /srv/llmops/llmops-bundle-0.1.0

- name: Read the image IDs of the bundle (manifest checked only)
  llmops.bluegreen.bundle_check:
    path: /srv/llmops/llmops-bundle-0.1.0
    verify: []
    images: [llmops/qa-api:0.1.0-4e5d6c7b8a9f]
  register: bundle
"""

RETURN = r"""
manifest:
  description: The bundle's C(bundle.json).
  returned: success
  type: dict
  sample: {"format": 1, "name": "llmops-bundle-0.1.0", "commit": "4daa028", "images": {}, "debs": {}}
sums_sha256:
  description: The sha256 of the bundle's C(SHA256SUMS), to compare with the one C(make bundle) printed.
  returned: success
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
verified_files:
  description: Number of files whose sha256 was checked.
  returned: success
  type: int
  sample: 142
verified_bytes:
  description: Their size in bytes.
  returned: success
  type: int
  sample: 61234567
image_ids:
  description: Image reference to image ID, for each of O(images).
  returned: success
  type: dict
  sample: {"llmops/qa-api:0.1.0-4e5d6c7b8a9f": "sha256:91ed..."}
image_archives:
  description: Image reference to its archive's path relative to O(path), for each of O(images).
  returned: success
  type: dict
  sample: {"llmops/qa-api:0.1.0-4e5d6c7b8a9f": "images/llmops_qa-api_0.1.0-4e5d6c7b8a9f-91ed0c3b2a1f.tar"}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.llmops.bluegreen.plugins.module_utils._bundle import (
    MANIFEST_NAME,
    REFETCH,
    BundleError,
    check_manifest,
    describe,
    find_images,
    missing_images_message,
    missing_packages,
    read_sums,
    safe_relpath,
    selected,
    verify,
)


def check(params):
    root = params['path']
    if not os.path.isdir(root):
        raise BundleError('%s is not a directory: unpack the bundle first (scripts/bundle.py unpack <archive> '
                          '<directory>) and point llmops_bundle_dir at the directory it prints' % root)
    sums, sums_sha256 = read_sums(root)
    only = None
    if params['verify'] is not None:
        only = [MANIFEST_NAME] + [safe_relpath(p.rstrip('/')) for p in params['verify']]
    result = verify(root, sums, only)
    message = describe(root, result)
    if message:
        raise BundleError(message)
    with open(os.path.join(root, MANIFEST_NAME), 'rb') as handle:
        try:
            manifest = json.loads(handle.read().decode('utf-8'))
        except ValueError as exc:
            raise BundleError('%s/%s is not JSON (%s). %s' % (root, MANIFEST_NAME, exc, REFETCH))
    problems = check_manifest(manifest, sums)
    if problems:
        raise BundleError('bundle %s: %s' % (root, '; '.join(problems)))
    ids, archives, missing = find_images(manifest, params['images'])
    if missing:
        raise BundleError(missing_images_message(root, manifest, missing))
    lacking = missing_packages(manifest, params['packages'])
    if lacking:
        raise BundleError('bundle %s has no Debian package %s (it was made for %s): make the bundle with those '
                          'packages in docker_host_packages (make bundle reads the same variables as the deploy)'
                          % (root, ', '.join(lacking), ', '.join(manifest['debs'].get('packages', []))))
    return dict(manifest=manifest, sums_sha256=sums_sha256, verified_files=len([r for r in sums if selected(r, only)]),
                verified_bytes=result['bytes'], image_ids=ids, image_archives=archives)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            verify=dict(type='list', elements='str'),
            images=dict(type='list', elements='str', default=[]),
            packages=dict(type='list', elements='str', default=[]),
        ),
        supports_check_mode=True,
    )
    try:
        result = check(module.params)
    except BundleError as exc:
        module.fail_json(msg=to_native(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot read the bundle %s: %s' % (module.params['path'], to_native(exc)))
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
