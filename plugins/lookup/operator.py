# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: operator
short_description: Who runs this play, for the audit log
version_added: 0.2.0
description:
  - Names the AWX/Tower user and job when the play runs as an AWX/Tower job (the extra vars
    C(awx_user_name) and C(awx_job_id), or C(tower_user_name) and C(tower_job_id), with the job
    environment's C(JOB_ID) equal to the job id), for example C(alice (AWX job 42)).
  - The same variables given with C(-e) outside such a job are shown as such, with the
    controller login, for example C(alice (-e awx_user_name, not an AWX job; login root@ctl)).
  - Otherwise C(llmops_operator) when set (shown as given with C(-e)), else the login
    C(user@host) of the controller process. Runs on the controller, never on a managed host.
author:
  - llmops.bluegreen developers (@llmops)
options:
  detail:
    description: Return the dictionary C(operator), C(source), C(user), C(job) instead of the text.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Switch and name the operator in the audit log
  llmops.bluegreen.bluegreen_switch:
    color: green
    operator: "{{ lookup('llmops.bluegreen.operator') }}"
"""

RETURN = r"""
_raw:
  description: The operator text (or, with O(detail), its parts), as a one-element list.
  type: list
  elements: raw
"""

import getpass
import os
import socket

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.lookup import LookupBase

from ansible_collections.llmops.bluegreen.plugins.plugin_utils._operator import operator_of


def controller_login():
    """``user@host`` of the controller process (an EE user may have no passwd entry)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = 'uid%d' % os.getuid()
    return '%s@%s' % (user, socket.gethostname().split('.')[0])


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        # Plain keyword, no set_options(): the lookup also runs outside a plugin loader (unit tests).
        detail = boolean(kwargs.get('detail', False), strict=True)
        result = operator_of(variables or {}, os.environ, controller_login())
        return [result if detail else result['operator']]
