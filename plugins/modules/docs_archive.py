#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: docs_archive
short_description: Pack a directory of documents into one reproducible tar.gz
version_added: 0.1.0
description:
  - Packs every regular file below O(src) into the gzip-compressed tar O(dest), so that a knowledge base's
    documents travel to a host as one file (one transfer and one extraction, however many documents) instead
    of one copy per file.
  - The archive depends only on the names and bytes of the documents. Entries are sorted by path, owned by 0:0,
    files have mode 0644 and directories 0755, all carry the same modification time (2000-01-01, not the time a
    checkout wrote them) and the gzip header carries no time. The same documents therefore give a byte-identical
    archive, and neither its copy to a host nor its extraction there changes anything.
  - Symlinks and special files (devices, fifos, sockets) fail the task, naming the path; a file is opened without
    following links, so a link created after an earlier check is refused too.
  - O(dest) is written to a temporary file next to it and renamed into place, mode 0600, only when its bytes
    change. Its directory is created with mode 0700 when missing.
  - Meant to run on the controller (delegated to localhost) before M(ansible.builtin.copy) and
    M(ansible.builtin.unarchive) put the documents on a host.
author:
  - llmops.bluegreen developers (@llmops)
extends_documentation_fragment:
  - llmops.bluegreen.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the archive is packed and compared with O(dest) but O(dest) is left as it is; C(changed)
        tells whether it would be replaced.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  src:
    description:
      - Directory of documents to pack.
    type: path
    required: true
  dest:
    description:
      - Path of the archive to write, for example in a private cache directory of the controller.
    type: path
    required: true
seealso:
  - module: llmops.bluegreen.kb_build
  - module: ansible.builtin.unarchive
"""

EXAMPLES = r"""
- name: Pack the documents on the controller
  llmops.bluegreen.docs_archive:
    src: /srv/handbook
    dest: ~/.cache/llmops/qa/handbook-docs.tar.gz
  delegate_to: localhost
  register: docs_pack
"""

RETURN = r"""
sha256:
  description: sha256 of the archive's bytes.
  returned: success
  type: str
  sample: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
files:
  description: Number of regular files packed.
  returned: success
  type: int
  sample: 8
bytes:
  description: Total size of the packed files before compression, in bytes.
  returned: success
  type: int
  sample: 52311
dest:
  description: Path of the archive.
  returned: success
  type: str
  sample: /root/.cache/llmops/qa/handbook-docs.tar.gz
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.llmops.bluegreen.plugins.module_utils._docs_archive import ArchiveError, pack


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='path', required=True),
            dest=dict(type='path', required=True),
        ),
        supports_check_mode=True,
    )
    src, dest = module.params['src'], module.params['dest']
    try:
        if not os.path.isdir(src):
            raise ArchiveError('src %s is not a directory: point it at the documents' % src)
        if os.path.isdir(dest):
            raise ArchiveError('dest %s is a directory: give the path of the archive file' % dest)
        result = pack(src, dest, check_mode=module.check_mode)
    except (ArchiveError, OSError) as exc:
        module.fail_json(msg=to_native(exc))
    module.exit_json(dest=dest, **result)


if __name__ == '__main__':
    main()
