# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: qa_limits
short_description: The qa-api's own concurrency limits as its environment
version_added: 0.3.0
description:
  - The qa-api limits generations itself, behind the gateway's limits, per API key (C(QA_KEY_CONCURRENCY),
    image default 4), in flight to its inference server (C(QA_INFERENCE_CONCURRENCY), default 4), waiting
    (C(QA_INFERENCE_QUEUE), default 32) and how long one waits (C(QA_INFERENCE_QUEUE_TIMEOUT), default 30 s).
  - Returns only the variables that are set (not C(None)), so a color whose inventory sets none keeps its
    definition and release fingerprint; refuses a value out of range naming the variable and the fix.
author:
  - llmops.bluegreen developers (@llmops)
options:
  _input:
    description:
      - A dict with any of C(key_concurrency) (0 = no limit), C(inference_concurrency) (at least 1),
        C(inference_queue) (0 or more) and C(inference_queue_timeout) (seconds, above 0); C(None) = the image's default.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: The qa-api environment of the limits
  ansible.builtin.debug:
    msg: "{{ {'key_concurrency': 0, 'inference_concurrency': 1} | llmops.bluegreen.qa_limits }}"
"""

RETURN = r"""
_value:
  description: The C(QA_*) variables of the limits that are set, values as strings.
  type: dict
"""

from ansible.errors import AnsibleFilterError

# name -> (environment variable, role variable, smallest value, number type)
LIMITS = {
    "key_concurrency": ("QA_KEY_CONCURRENCY", "qa_service_key_concurrency", 0, int),
    "inference_concurrency": ("QA_INFERENCE_CONCURRENCY", "qa_service_inference_concurrency", 1, int),
    "inference_queue": ("QA_INFERENCE_QUEUE", "qa_service_inference_queue", 0, int),
    "inference_queue_timeout": ("QA_INFERENCE_QUEUE_TIMEOUT", "qa_service_inference_queue_timeout", 0.001, float),
}


def _number(value, kind, var, least):
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float) and value != int(value)):
            raise ValueError(value)
        number = kind(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("%s is %r: set a %s, or leave it unset for the qa-api's default"
                                 % (var, value, "whole number" if kind is int else "number of seconds"))
    if number < least:
        raise AnsibleFilterError("%s is %s: it must be %s; leave it unset for the qa-api's default"
                                 % (var, value, "above 0" if kind is float else "at least %d" % least))
    return number


def qa_limits(limits):
    if not isinstance(limits, dict):
        raise AnsibleFilterError("qa_limits takes a dict of the qa-api's limits, not %s" % type(limits).__name__)
    unknown = sorted(set(limits) - set(LIMITS))
    if unknown:
        raise AnsibleFilterError("qa_limits: unknown limit(s) %s; known: %s" % (", ".join(unknown), ", ".join(sorted(LIMITS))))
    env = {}
    for name, value in limits.items():
        if value is None or value == "":
            continue
        var, role_var, least, kind = LIMITS[name]
        number = _number(value, kind, role_var, least)
        env[var] = "%g" % number if kind is float else str(number)
    return env


class FilterModule(object):
    def filters(self):
        return {"qa_limits": qa_limits}
