# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: container_networks
short_description: The networks a container of the service joins, and its network mode
version_added: 0.2.0
description:
  - The internal network alone (no egress), or, when an egress network is given, both with the
    egress network first (it is the network mode, so an existing container on it gains the internal
    network by a live connect instead of being recreated).
  - The C(networks) and C(network_mode) options of M(community.docker.docker_container) and of a
    container definition (role C(container)).
author:
  - llmops.bluegreen developers (@llmops)
options:
  _input:
    description: The service's internal network (the C(internal_network) of M(llmops.bluegreen.names)).
    type: str
    required: true
  egress:
    description: The egress-capable network to join as well; empty or null joins none.
    type: str
"""

EXAMPLES = r"""
- name: Attach Redis to the internal network only
  community.docker.docker_container:
    name: qa-redis
    image: llmops/redis:0.1.0
    networks: "{{ (__names.internal_network | llmops.bluegreen.container_networks).networks }}"
    network_mode: "{{ (__names.internal_network | llmops.bluegreen.container_networks).network_mode }}"
    dns_opts: "{{ (__names.internal_network | llmops.bluegreen.container_networks).dns_opts }}"
  vars:
    __names: "{{ 'qa' | llmops.bluegreen.names }}"
"""

RETURN = r"""
_value:
  description: >-
    A dict with C(networks) (a list of C({name})), C(network_mode) (the first network's name) and C(dns_opts)
    (C(ndots:1) on the internal network alone, so a lookup of a stopped container fails at once instead of
    waiting for resolvers outside that it cannot reach; empty with egress).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.module_utils._names import NamesError, container_networks


def attach(internal, egress=None):
    try:
        return container_networks(internal, egress)
    except NamesError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {'container_networks': attach}
