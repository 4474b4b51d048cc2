#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: slo_check
short_description: Error rate and p99 latency of one color from Prometheus, judged against SLO thresholds
version_added: 0.3.0
description:
  - Asks the Prometheus HTTP API (C(/api/v1/query)) for the requests a color's qa-api answered over
    O(window), the share of them that were 5xx and the 99th percentile of their duration
    (C(histogram_quantile) over C(qa_request_duration_seconds)), and judges them against O(max_error_rate)
    and O(max_p99_seconds).
  - Selects the series by the target labels the C(llmops.bluegreen.monitoring) role gives the qa-api
    scrape targets (job C(qa-api), C(service), C(color)) and by the qa-api's C(endpoint) label.
  - Fewer than O(min_requests) requests give the status C(not_enough_traffic) with O(ignore:ok=false), never
    a pass. Thresholds are judged only with enough requests.
  - The module never fails for a breach; it returns RV(ok) and RV(breaches) so that the caller decides
    (switch back, fail the play naming RV(msg)). It fails when Prometheus cannot be asked.
author:
  - llmops.bluegreen developers (@llmops)
extends_documentation_fragment:
  - llmops.bluegreen.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it queries Prometheus in check mode too.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  url:
    description:
      - Base URL of Prometheus, for example V(http://127.0.0.1:9090).
    type: str
    required: true
  service:
    description:
      - Service name (the C(service) label of the targets).
    type: str
    default: qa
  color:
    description:
      - Color to judge.
    type: str
    required: true
    choices: [blue, green]
  window:
    description:
      - Prometheus duration the measures cover, ending now (V(30s), V(5m), V(1h)).
      - Use at least four scrape intervals, or C(rate) has too few samples.
    type: str
    default: 5m
  endpoints:
    description:
      - Regular expression on the qa-api's C(endpoint) label of the requests that count (health checks and
        scrapes are left out by the default).
    type: str
    default: /v1/.*
  max_error_rate:
    description:
      - Highest acceptable share of 5xx responses (0.01 is 1 %).
    type: float
    default: 0.01
  max_p99_seconds:
    description:
      - Highest acceptable 99th percentile of the request duration, in seconds (a stream lasts until its
        last byte). Resolution follows the histogram buckets (..., 10, 20, 30, 60 s); values between two
        buckets are interpolated.
    type: float
    default: 30.0
  min_requests:
    description:
      - Fewest requests in O(window) for a verdict; below it RV(status) is C(not_enough_traffic).
    type: int
    default: 20
  timeout:
    description:
      - Seconds to wait for each Prometheus answer.
    type: int
    default: 10
seealso:
  - module: llmops.bluegreen.bluegreen_switch
  - name: Prometheus HTTP API
    description: Instant queries.
    link: https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
"""

EXAMPLES = r"""
- name: Judge the canary color over the last five minutes
  llmops.bluegreen.slo_check:
    url: http://127.0.0.1:9090
    service: qa
    color: green
    window: 5m
    max_error_rate: 0.01
    max_p99_seconds: 20
    min_requests: 50
  register: slo

- name: Fail the play on a breach, naming metric, value and threshold
  ansible.builtin.fail:
    msg: "{{ slo.msg }}"
  when: slo.status == 'breach'
"""

RETURN = r"""
ok:
  description: True only when there were enough requests and no threshold was crossed.
  returned: always
  type: bool
  sample: false
status:
  description: C(pass), C(breach) or C(not_enough_traffic).
  returned: always
  type: str
  sample: breach
breaches:
  description: The thresholds crossed (empty unless RV(status) is C(breach)).
  returned: always
  type: list
  elements: dict
  contains:
    metric:
      description: C(error_rate) or C(p99_seconds).
      type: str
    value:
      description: Measured value.
      type: float
    threshold:
      description: The threshold it exceeded.
      type: float
  sample: [{"metric": "error_rate", "value": 0.25, "threshold": 0.01}]
requests:
  description: Requests answered by the color's qa-api in the window (Prometheus C(increase), so not always whole).
  returned: always
  type: float
  sample: 120.0
errors:
  description: Of those, responses with a 5xx status.
  returned: always
  type: float
  sample: 30.0
error_rate:
  description: RV(errors) / RV(requests), or null without requests.
  returned: always
  type: float
  sample: 0.25
p99_seconds:
  description: 99th percentile of the request duration in seconds, or null without requests.
  returned: always
  type: float
  sample: 1.8
window:
  description: The window measured.
  returned: always
  type: str
  sample: 5m
queries:
  description: The PromQL asked for each measure (C(requests), C(errors), C(p99)).
  returned: always
  type: dict
msg:
  description: One line for humans; on a breach it names each metric, its value and the threshold.
  returned: always
  type: str
  sample: "SLO breached: error_rate 0.25 > threshold 0.01"
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.parse import urlencode
from ansible.module_utils.urls import open_url

from ansible_collections.llmops.bluegreen.plugins.module_utils._names import NamesError
from ansible_collections.llmops.bluegreen.plugins.module_utils._slo import SLOError, check_inputs, decide, measure


def prometheus_query(base_url, timeout):
    """A ``query(promql) -> dict`` bound to one Prometheus."""
    endpoint = base_url.rstrip('/') + '/api/v1/query'

    def query(promql):
        try:
            # POST: long selectors stay out of URLs and proxy logs.
            response = open_url(endpoint, method='POST', data=urlencode({'query': promql}), timeout=timeout,
                                headers={'Content-Type': 'application/x-www-form-urlencoded'})
            return json.loads(response.read())
        except ValueError as exc:
            raise SLOError('Prometheus at %s answered something that is not JSON: %s' % (base_url, exc))
        except Exception as exc:  # urllib, socket and HTTP errors alike: one clear message
            detail = getattr(exc, 'read', None)
            body = ''
            if detail is not None:
                try:
                    body = ': ' + detail().decode('utf-8', 'replace')[:300]
                except Exception:  # the body is only a hint
                    body = ''
            raise SLOError('cannot query Prometheus at %s: %s%s' % (base_url, exc, body))
    return query


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            service=dict(type='str', default='qa'),
            color=dict(type='str', required=True, choices=['blue', 'green']),
            window=dict(type='str', default='5m'),
            endpoints=dict(type='str', default='/v1/.*'),
            max_error_rate=dict(type='float', default=0.01),
            max_p99_seconds=dict(type='float', default=30.0),
            min_requests=dict(type='int', default=20),
            timeout=dict(type='int', default=10),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        check_inputs(p['service'], p['color'], p['window'], p['endpoints'])
        metrics = measure(prometheus_query(p['url'], p['timeout']), p['service'], p['color'], p['window'],
                          p['endpoints'])
        metrics['window'] = p['window']
        verdict = decide(metrics, p['max_error_rate'], p['max_p99_seconds'], p['min_requests'])
    except (SLOError, NamesError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **dict(metrics, **verdict))


if __name__ == '__main__':
    main()
