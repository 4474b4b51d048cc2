# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: tree_checksum
short_description: Fingerprint of directories on the controller
version_added: 0.3.0
description:
  - The checksum that M(llmops.bluegreen.kb_checksum) returns for each directory (sha256 over the
    sorted relative paths and the sha256 of every regular file), computed in the controller
    process, without a module run per directory.
  - Refuses a symlink or a special file below a directory, naming it, as the module does.
author:
  - llmops.bluegreen developers (@llmops)
options:
  _terms:
    description: Directories on the controller.
    type: list
    elements: path
    required: true
  exclude:
    description: Glob patterns of files and directories to leave out, matched against each name and relative path.
    type: list
    elements: str
    default: []
  dockerignore:
    description:
      - Leave out what each directory's C(.dockerignore) leaves out of a C(docker build) context
        (Docker's pattern rules; the Dockerfiles and C(.dockerignore) always count), so the checksum
        is that of the build context. A C(.dockerignore) with an exception (C(!pattern)) is not
        interpreted and the whole directory counts.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Tag each image by the fingerprint of its source directory
  ansible.builtin.set_fact:
    image_checksums: "{{ query('llmops.bluegreen.tree_checksum', 'images/qa-api', 'images/gateway', exclude=['__pycache__']) }}"
"""

RETURN = r"""
_raw:
  description: One sha256 hex checksum per directory, in the order given.
  type: list
  elements: str
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.lookup import LookupBase

from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import FingerprintError, checksum_of, fingerprint
from ansible_collections.llmops.bluegreen.plugins.plugin_utils._docker_context import context_digests


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        # Plain keyword, no set_options(): the lookup also runs outside a plugin loader (unit tests).
        exclude = kwargs.get('exclude') or []
        if not isinstance(exclude, list) or not all(isinstance(item, str) for item in exclude):
            raise AnsibleLookupError('tree_checksum: exclude must be a list of glob patterns, got %r' % (exclude,))
        dockerignore = boolean(kwargs.get('dockerignore', False), strict=True)
        checksums = []
        for term in terms:
            for path in term if isinstance(term, list) else [term]:
                if not os.path.isdir(path):
                    raise AnsibleLookupError('tree_checksum: %s is not a directory on the controller' % path)
                try:
                    checksum, digests = fingerprint(path, exclude=exclude)
                    checksums.append(checksum_of(context_digests(digests, path)) if dockerignore else checksum)
                except FingerprintError as exc:
                    raise AnsibleLookupError('tree_checksum: %s' % to_native(exc))
        return checksums
