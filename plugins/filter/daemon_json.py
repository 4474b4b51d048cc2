# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: daemon_json
short_description: Merge the collection's Docker daemon settings into a host's daemon.json
version_added: 0.3.0
description:
  - Returns the host's C(/etc/docker/daemon.json) with the collection's keys set, keeping every
    other key the operator put there (C(data-root), C(registry-mirrors), C(userns-remap), ...).
  - Objects are merged key by key (an operator's own runtime or log option stays); any other
    value of a managed key replaces the host's.
  - A file that is not a JSON object fails, so it is never replaced by a guess.
author:
  - llmops.bluegreen developers (@llmops)
options:
  _input:
    description: The current file's text (empty or whitespace for no file), or an already parsed dict.
    type: raw
    required: true
  managed:
    description: The keys the collection sets.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Merge the engine settings into what is on the host
  ansible.builtin.copy:
    dest: /etc/docker/daemon.json
    content: "{{ current_text | llmops.bluegreen.daemon_json({'live-restore': true}) | to_nice_json }}\n"
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The merged settings.
  type: dict
"""

import copy
import json

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text


def merge(current, managed):
    """``current`` with ``managed`` merged in: dicts recursively, other values replaced. Pure."""
    result = copy.deepcopy(current)
    for key, value in managed.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def daemon_json(current, managed):
    if not isinstance(managed, dict):
        raise AnsibleFilterError('daemon_json: the managed settings must be a dict, got %s' % type(managed).__name__)
    if isinstance(current, dict):
        parsed = current
    else:
        text = to_text(current if current is not None else '')
        try:
            parsed = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise AnsibleFilterError('daemon_json: the existing daemon.json is not valid JSON (%s); fix or remove it, '
                                     'it is not overwritten' % exc)
    if not isinstance(parsed, dict):
        raise AnsibleFilterError('daemon_json: the existing daemon.json is a JSON %s, not an object; fix or remove it'
                                 % type(parsed).__name__)
    return merge(parsed, managed)


class FilterModule(object):
    def filters(self):
        return {'daemon_json': daemon_json}
