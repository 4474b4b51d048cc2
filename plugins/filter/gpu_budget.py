# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: gpu_budget
short_description: Place the vLLM servers of each host on its GPUs and check their memory budget
version_added: 0.2.0
description:
  - Places each vLLM server of a docker host - blue and green in independent mode, the one shared server in
    shared mode - on its GPUs (device ids) with its memory share (vLLM's C(--gpu-memory-utilization)), from the
    per-color settings or else the single ones (docs/contracts.md "GPU placement").
  - Checks, for every GPU of every host, that the shares of the servers placed on it add up to at most 1.0 and
    that each share is in (0, 1]; and that the server about to start fits next to the host's other vLLM servers
    as they run now (device ids and command from their docker inspect).
  - Never fails on a bad placement; returns C(ok) and messages that name the host, the GPU, the servers, their
    shares and the fix, for an M(ansible.builtin.assert).
author:
  - llmops.bluegreen developers (@llmops)
options:
  _input:
    description:
      - 'The settings of each host, C({host: settings}). Keys of settings: C(mode) (C(independent) or C(shared)),
        C(gpus) and C(share) (the single settings), C(color_gpus) and C(color_shares) (by color; a color not
        listed uses the single settings), C(colors) (a fleet - the colors placed on this host; default both), and
        optionally C(starting) (the server about to start: a color, or
        C(shared)) with C(running) (C({server: docker inspect}) of the host''s other vLLM containers).'
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Refuse two colors that cannot share GPU 0
  ansible.builtin.assert:
    that: __budget.ok
    fail_msg: "{{ __budget.message }}"
  vars:
    __budget: >-
      {{ {inventory_hostname: {'mode': 'independent', 'gpus': ['0'], 'share': 0.9,
          'color_gpus': {'green': ['1']}, 'color_shares': {}}} | llmops.bluegreen.gpu_budget }}
"""

RETURN = r"""
_value:
  description: >-
    A dict with C(ok) (bool), C(problems) (one message each), C(message) (all problems, or the summary),
    C(summary) (each host's GPUs, their servers and shares), C(placement) (C({host: {server: {gpus, share}}}))
    and C(usage) (C({host: {gpu: {server: share}}})).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.module_utils._gpu_budget import GpuBudgetError, budget


def gpu_budget(hosts):
    try:
        return budget(hosts)
    except GpuBudgetError as exc:
        raise AnsibleFilterError('gpu_budget: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {'gpu_budget': gpu_budget}
