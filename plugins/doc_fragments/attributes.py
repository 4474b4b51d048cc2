# -*- coding: utf-8 -*-
# Copyright: (c) 2026, llmops.bluegreen developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """What the attributes mean; each module states its own support."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
"""

    # The options of the modules that read or write a service's state directory.
    SERVICE_STATE = r"""
options:
  service:
    description:
      - Service name; its state directory is O(state_dir)/O(service).
    type: str
    default: qa
  state_dir:
    description:
      - Root of the services' state directories on the gateway host.
    type: path
    default: /var/lib/llmops
"""
