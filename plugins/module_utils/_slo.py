# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SLO analysis of one color from Prometheus: the queries, the answer parsing, the verdict.

No I/O here except through the ``query`` callable given to :func:`measure`, so the
decision is tested without Prometheus (tests/unit/plugins/module_utils/test_slo.py).
The series are the qa-api's (images/qa-api/qa_api/metrics.py): ``qa_requests_total``
{endpoint, method, status} and ``qa_request_duration_seconds`` {endpoint}; the scrape
config adds the target labels ``service`` and ``color`` (roles/monitoring).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import math
import re

from ansible_collections.llmops.bluegreen.plugins.module_utils._names import COLORS, QA_JOB, check_service

# Prometheus durations: 30s, 5m, 1h30m ...
_WINDOW_RE = re.compile(r'^([0-9]+(ms|s|m|h|d|w|y))+$')

STATUS_PASS = 'pass'
STATUS_BREACH = 'breach'
STATUS_THIN = 'not_enough_traffic'


class SLOError(Exception):
    """Prometheus could not be asked, or answered something unusable."""


def check_inputs(service, color, window, endpoints):
    check_service(service)
    if color not in COLORS:
        raise SLOError('color must be one of %s, got %r' % (', '.join(COLORS), color))
    if not _WINDOW_RE.match(window or ''):
        raise SLOError('window %r is not a Prometheus duration (e.g. 30s, 5m, 1h)' % (window,))
    try:
        re.compile(endpoints)
    except re.error as exc:
        raise SLOError('endpoints %r is not a regular expression: %s' % (endpoints, exc))
    if '"' in endpoints or '\\' in endpoints:
        raise SLOError('endpoints must not contain quotes or backslashes: %r' % (endpoints,))


def queries(service, color, window, endpoints='/v1/.*', quantile=0.99):
    """The PromQL of each measure: request count, 5xx count and latency quantile over ``window``."""
    sel = 'job="%s",service="%s",color="%s",endpoint=~"%s"' % (QA_JOB, service, color, endpoints)
    return {
        'requests': 'sum(increase(qa_requests_total{%s}[%s]))' % (sel, window),
        'errors': 'sum(increase(qa_requests_total{%s,status=~"5.."}[%s]))' % (sel, window),
        'p99': 'histogram_quantile(%s, sum by (le) (rate(qa_request_duration_seconds_bucket{%s}[%s])))'
               % (quantile, sel, window),
    }


def parse_scalar(body):
    """The single value of an instant-query answer (JSON text or dict); None for no series or NaN."""
    if not isinstance(body, dict):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise SLOError('Prometheus answered something that is not JSON: %s' % exc)
    if body.get('status') != 'success':
        raise SLOError('Prometheus refused the query: %s: %s' % (body.get('errorType'), body.get('error')))
    data = body.get('data') or {}
    result = data.get('result')
    if data.get('resultType') == 'scalar':
        result = [{'value': result}]
    if not result:
        return None
    if len(result) > 1:
        raise SLOError('expected one series, Prometheus returned %d' % len(result))
    try:
        value = float(result[0]['value'][1])
    except (KeyError, IndexError, TypeError, ValueError):
        raise SLOError('unexpected Prometheus result: %r' % (result[0],))
    return None if math.isnan(value) else value


def measure(query, service, color, window, endpoints='/v1/.*'):
    """Ask ``query(promql) -> answer`` for each measure; returns requests, errors, error_rate, p99_seconds."""
    q = queries(service, color, window, endpoints)
    requests = parse_scalar(query(q['requests'])) or 0.0
    errors = parse_scalar(query(q['errors'])) or 0.0
    p99 = parse_scalar(query(q['p99']))
    return {
        'requests': requests,
        'errors': errors,
        # increase() extrapolates each series on its own: the ratio can come out a hair over 1.
        'error_rate': min(errors / requests, 1.0) if requests > 0 else None,
        'p99_seconds': p99,
        'queries': q,
    }


def decide(metrics, max_error_rate=0.01, max_p99_seconds=None, min_requests=20):
    """The verdict on measured ``metrics``: ``{ok, status, breaches, msg}``.

    Too few requests is its own status, never a pass: a canary that saw no traffic has not
    shown anything. Thresholds are only judged with enough requests (an error rate of 1 in 2
    says little). A breach lists the metric, its value and the threshold it crossed.
    """
    requests = metrics.get('requests') or 0.0
    window = metrics.get('window', '')
    if requests < min_requests:
        return {
            'ok': False, 'status': STATUS_THIN, 'breaches': [],
            'msg': 'not enough traffic: %g requests in %s, at least %d needed for a verdict; '
                   'send more traffic (synthetic probes) or widen the window'
                   % (round(requests, 2), window or 'the window', min_requests),
        }
    breaches = []
    rate = metrics.get('error_rate') or 0.0
    if rate > max_error_rate:
        breaches.append({'metric': 'error_rate', 'value': rate, 'threshold': max_error_rate})
    p99 = metrics.get('p99_seconds')
    if max_p99_seconds is not None and p99 is not None and p99 > max_p99_seconds:
        breaches.append({'metric': 'p99_seconds', 'value': p99, 'threshold': max_p99_seconds})
    if breaches:
        return {
            'ok': False, 'status': STATUS_BREACH, 'breaches': breaches,
            'msg': 'SLO breached: ' + '; '.join('%s %.4g > threshold %g' % (b['metric'], b['value'], b['threshold'])
                                                for b in breaches),
        }
    return {
        'ok': True, 'status': STATUS_PASS, 'breaches': [],
        'msg': 'SLO met: %g requests, error rate %.4g <= %g, p99 %s' % (
            round(requests, 2), rate, max_error_rate,
            'n/a' if p99 is None else '%.4gs' % p99 + ('' if max_p99_seconds is None else ' <= %gs' % max_p99_seconds)),
    }
