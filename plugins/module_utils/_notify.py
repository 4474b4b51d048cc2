# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Release events as a JSON webhook (docs/contracts-state.md "Notifications").

Every audited switch, canary step, rollback, abort and retire is POSTed as the audit
record plus ``event``. A webhook that fails never fails the switch that already
happened: the caller gets a warning to show instead.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

from ansible.module_utils.urls import open_url

# Options of the modules that notify (doc fragment llmops.bluegreen.attributes.notify).
NOTIFY_ARGS = dict(
    notify_url=dict(type='str', no_log=True),
    notify_timeout=dict(type='int', default=5),
    notify_validate_certs=dict(type='bool', default=True),
    reason=dict(type='str'),
)


def event_name(record):
    """What happened, for a receiver that routes on it: the action, or canary_step for a split."""
    weights = record.get('weights') or {}
    if record.get('action') == 'switch' and len([w for w in weights.values() if w > 0]) > 1:
        return 'canary_step'
    return record.get('action') or 'switch'


def payload(record):
    """The JSON body: the audit record with ``event``; ``failed`` when the change did not happen."""
    body = dict(record)
    body['event'] = event_name(record)
    body['failed'] = not str(record.get('result') or '').startswith('ok')
    return body


def post(url, record, timeout=5, validate_certs=True, opener=open_url):
    """POST ``payload(record)`` to ``url``; returns None, or a warning naming the failure (not the URL: it may hold a token)."""
    if not url:
        return None
    body = json.dumps(payload(record), sort_keys=True).encode('utf-8')
    try:
        resp = opener(url, data=body, method='POST', timeout=timeout, validate_certs=validate_certs,
                      headers={'Content-Type': 'application/json', 'User-Agent': 'llmops.bluegreen'})
        status = resp.getcode()
    except Exception as exc:  # pylint: disable=broad-except  # any failure of the receiver is only a warning
        return 'the notification webhook failed (%s): %s' % (type(exc).__name__, str(exc)[:200])
    if status >= 300:
        return 'the notification webhook answered HTTP %s' % status
    return None
