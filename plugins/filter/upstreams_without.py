# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: upstreams_without
short_description: An upstreams.conf without the servers whose containers were removed
version_added: 0.2.0
description:
  - nginx resolves every server name of C(upstreams.conf) when it loads it, so a file naming a container
    that no longer exists keeps the gateway from starting or reloading, and blocks the deploy that would
    repair the service. This drops those servers; a color left with no server is dropped and the color
    left takes all traffic (clients failed over to it already); with none left, the bootstrap file (nothing routed).
  - The file must be one M(llmops.bluegreen.bluegreen_switch) rendered (or the bootstrap); its keepalive,
    failover and canary are kept.
author:
  - llmops.bluegreen developers (@llmops)
options:
  _input:
    description: The text of C(upstreams.conf).
    type: str
    required: true
  service:
    description: The service name (C(llmops_service)), written in the file's header.
    type: str
    required: true
  gone:
    description: The servers (C(host:port) as in the file) to drop.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Route only to containers that exist
  ansible.builtin.copy:
    content: "{{ (conf.content | b64decode | llmops.bluegreen.upstreams_without('qa', ['qa-qa-green:8000'])).text }}"
    dest: /var/lib/llmops/qa/nginx/upstreams.conf
    mode: "0644"
"""

RETURN = r"""
_value:
  description: >-
    C(text) (the new file), C(changed) (it differs), C(dropped) (per color, the servers dropped) and
    C(weights) (per color routed, the new weights; empty for the bootstrap).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.module_utils._reconcile import ReconcileError, without_servers


def upstreams_without(text, service, gone):
    try:
        return without_servers(service, text, gone)
    except ReconcileError as exc:
        raise AnsibleFilterError('cannot drop the servers of removed containers from upstreams.conf: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {'upstreams_without': upstreams_without}
