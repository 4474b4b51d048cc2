# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: fleet
short_description: Which host runs which part of a service, and how the gateway reaches each color
version_added: 0.3.0
description:
  - From the inventory groups C(llmops_gateway), C(llmops_blue), C(llmops_green) and C(llmops_redis)
    (optional), the placement of one service. A missing color group means the gateway host itself, so a
    single-host inventory needs none of them.
  - A color on the gateway host is reached by container name on the service network; a color host
    away from it at C(llmops_private_address) and port 8100 (the same for both colors, because it is part of the release fingerprint).
author:
  - llmops.bluegreen developers (@llmops)
options:
  _input:
    description: The inventory groups (C(groups)).
    type: dict
    required: true
  hostvars:
    description: C(hostvars); only C(llmops_private_address) of each host is read.
    type: dict
    required: true
  service:
    description: The service name (C(llmops_service)).
    type: str
    default: qa
  state_dir:
    description: Root of the services' state directories.
    type: str
    default: /var/lib/llmops
"""

EXAMPLES = r"""
- name: The gateway's upstream servers of green
  ansible.builtin.debug:
    msg: "{{ (groups | llmops.bluegreen.fleet(hostvars, llmops_service)).colors.green.upstreams }}"

# The companion filters take this placement: fleet_roles(host) (gateway, redis, blue, green) and
# fleet_images(host, monitoring=, shared_inference=, llamacpp=), the images the host runs.
- name: The images this host runs (what the images role ships to it)
  ansible.builtin.debug:
    msg: "{{ groups | llmops.bluegreen.fleet(hostvars) | llmops.bluegreen.fleet_images(inventory_hostname, monitoring=true) }}"
"""

RETURN = r"""
_value:
  description: >-
    A dict with C(gateway) (host), C(redis) (C(host), C(address), C(publish)), C(colors) (per color: C(hosts),
    C(upstreams) host:port, C(publish) and C(redis) per host), C(color_hosts), C(hosts) (gateway first) and
    C(remote) (a color runs away from the gateway host).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.module_utils._fleet import FleetError, fleet, host_images, host_roles


class _Vars(object):
    """hostvars as a mapping that reads only what fleet() asks for (no templating of the rest)."""

    def __init__(self, hostvars):
        self.hostvars = hostvars

    def get(self, host, default=None):
        try:
            host_vars = self.hostvars[host]
        except KeyError:
            return default
        try:
            return {'llmops_private_address': host_vars.get('llmops_private_address')}
        except Exception as exc:  # an undefined or broken template in the host's vars
            raise AnsibleFilterError('host %s: llmops_private_address: %s' % (host, exc))


def fleet_filter(groups, hostvars, service='qa', state_dir=None):
    try:
        return fleet(groups, _Vars(hostvars), service, state_dir)
    except FleetError as exc:
        raise AnsibleFilterError(str(exc))


def roles_filter(placement, host):
    return host_roles(placement, host)


def images_filter(placement, host, monitoring=False, shared_inference=True, llamacpp=True):
    return host_images(placement, host, monitoring=monitoring, shared_inference=shared_inference, llamacpp=llamacpp)


class FilterModule(object):
    def filters(self):
        return {'fleet': fleet_filter, 'fleet_roles': roles_filter, 'fleet_images': images_filter}
