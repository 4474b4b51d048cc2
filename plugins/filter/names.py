# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: names
short_description: Container names, networks, paths and upstream addresses of a service
version_added: 0.2.0
description:
  - Returns every name the collection uses for one service on a host, from one place
    (docs/contracts.md "Names on a host"), so roles and modules never spell them twice.
author:
  - llmops.bluegreen developers (@llmops)
options:
  _input:
    description: The service name (C(llmops_service)).
    type: str
    required: true
  state_dir:
    description: Root of the services' state directories.
    type: str
    default: /var/lib/llmops
  network:
    description: Egress-capable Docker network of the service; default C(<service>-net).
    type: str
  internal_network:
    description: Internal Docker network of the service (no egress); default C(<service>-internal).
    type: str
"""

EXAMPLES = r"""
- name: Name the gateway container
  ansible.builtin.debug:
    msg: "{{ (llmops_service | llmops.bluegreen.names(llmops_state_dir)).gateway }}"
"""

RETURN = r"""
_value:
  description: >-
    A dict with C(service), C(network), C(internal_network), C(gateway), C(gateway_net), C(redis), C(prometheus), C(redis_exporter),
    C(nginx_exporter), C(qa) and C(llm) (per color; C(llm.shared)), C(qa_port), C(llm_port), C(prometheus_port),
    C(redis_exporter_port), C(nginx_exporter_port), C(gateway_status_port), C(qa_job) (Prometheus job of the
    qa-api targets), C(upstream) (per color, host:port), and the paths C(dir), C(state), C(audit),
    C(lock), C(nginx_dir), C(upstreams), C(secrets_dir), C(gateway_dir), C(gateway_conf_dir),
    C(gateway_candidate_dir), C(tls_dir), C(tls_cert), C(operator_key), C(docs_root), C(kb_root), C(reports_dir),
    C(specs_dir), C(model_digests), C(monitoring_dir), C(prometheus_conf_dir), C(prometheus_candidate_dir),
    C(logs_dir), C(log_positions).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.module_utils._names import NamesError, names


def service_names(service, state_dir=None, network=None, internal_network=None):
    try:
        return names(service, state_dir, network, internal_network)
    except NamesError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {'names': service_names}
