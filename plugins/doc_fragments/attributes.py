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

    # The gateway options of the modules that act on it and verify through it
    # (argument spec: GATEWAY_ARGS in module_utils/_switch.py).
    GATEWAY = r"""
options:
  gateway_container:
    description:
      - Name of the gateway container (C(<service>-gateway)).
    type: str
    required: true
  verify_url:
    description:
      - URL requested through the gateway, each request on a new connection; the response's O(verify_header)
        and its JSON C(color) name the color that served it.
    type: str
    default: https://127.0.0.1/health
  verify_server_name:
    description:
      - TLS server name (SNI, certificate check) and C(Host) header of the requests through the gateway, while
        connecting to the address in O(verify_url).
      - For a gateway with a real certificate for its public name, reached through the loopback address.
    type: str
  verify_header:
    description:
      - Response header that names the color that served the request; as a request header it forces a color.
    type: str
    default: X-QA-Color
  verify_api_key:
    description:
      - "Operator API key sent as C(Authorization: Bearer <key>) with every request that forces a color with the
        O(verify_header) header; a gateway honours that header only for operator keys."
    type: str
  validate_certs:
    description:
      - Verify the gateway's TLS certificate.
      - Set to V(false) for a self-signed certificate, or give its CA in O(ca_path).
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle (PEM) to verify the gateway's certificate with.
    type: path
"""

    # The lease options (argument spec: LEASE_ARGS in module_utils/_lock.py).
    LEASE = r"""
options:
  lock_token:
    description:
      - Token of a lease taken before with M(llmops.bluegreen.bluegreen_lock); the task then runs inside it and
        leaves it held.
      - Without it the task takes its own lease for its duration (held by the module process, see the
        collection's docs/locking.md).
    type: str
  operator:
    description:
      - Who asked for the task, for the audit log. Defaults to the OS user running the module.
    type: str
"""

    # Release events POSTed as JSON (argument spec: NOTIFY_ARGS in module_utils/_notify.py).
    NOTIFY = r"""
options:
  notify_url:
    description:
      - Webhook that gets every audited change as JSON - the audit record plus C(event) (C(switch), C(canary_step),
        C(rollback), C(abort), C(retire), and from M(llmops.bluegreen.bluegreen_audit) C(retire_cold), C(retire_stop)
        or C(wake)) and C(failed).
      - A webhook that fails gives a warning; it never fails the change, which has already happened.
      - Kept out of logs, as such URLs often hold a token.
    type: str
  notify_timeout:
    description:
      - Seconds to wait for the webhook.
    type: int
    default: 5
  notify_validate_certs:
    description:
      - Verify the webhook's TLS certificate.
    type: bool
    default: true
  reason:
    description:
      - Why this change is made (for example the SLO breach behind an abort), recorded in the audit line
        and the notification.
    type: str
"""
