#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: qa_probe
short_description: Wait until a color's qa-api is ready with the expected spec, or gate it on scored answers
version_added: 0.1.0
description:
  - Talks to a qa-api (or an inference server) from inside its container (C(docker exec) running python3 urllib,
    nothing needs to be published) when O(container) is given, or over O(url).
  - O(mode=wait) polls C(/health) (or C(/v1/models) with O(endpoint=models)) until the server is ready, for at most
    O(timeout) seconds. It fails at once, naming the exit code and the last log lines, when the container stops or
    restarts while it waits; and at once, naming expected and reported values, when a ready server contradicts O(expect).
  - >-
    O(mode=gate) asks every question of O(questions) with the request header C(X-QA-Cache: bypass), so the answer
    comes from the model and not from the Redis cache, and scores the answer text. A question's score is the share
    of its O(questions[].expect_facts) found in the answer; it passes at O(pass_score). The same questions are asked
    to the baseline (O(baseline_container) or O(baseline_url)) when given. The module fails when the pass rate is under
    O(threshold), or more than O(margin) under the baseline's; the message names both rates.
requirements:
  - Docker SDK for Python (C(docker)) when O(container) or O(baseline_container) is used.
author:
  - llmops.bluegreen developers (@llmops)
extends_documentation_fragment:
  - llmops.bluegreen.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads and asks questions; it runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  mode:
    description:
      - V(wait) waits until the server is ready; V(gate) asks the questions and scores the answers.
    type: str
    required: true
    choices: [wait, gate]
  container:
    description:
      - Container of the server; requests run inside it against C(127.0.0.1:)O(port).
    type: str
  url:
    description:
      - Base URL of the server (without C(/v1)), used instead of O(container).
    type: str
  port:
    description:
      - Port of the server inside O(container) (and O(baseline_container)).
    type: int
    default: 8000
  headers:
    description:
      - Extra request headers, for example C(Authorization).
    type: dict
    default: {}
  bearer_file:
    description:
      - A file inside O(container) whose content is the bearer token for a server that requires an
        API key; read in the container, so the key never passes through the module. Only with O(container).
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of O(url) and O(baseline_url).
    type: bool
    default: true
  endpoint:
    description:
      - What O(mode=wait) polls. V(health) is qa-api's C(/health) (ready when C(status) is C(ready); C(error) fails at once).
        V(models) is C(GET /v1/models) of an inference server (ready when it answers 200).
    type: str
    default: health
    choices: [health, models]
  expect:
    description:
      - What a ready server must report; empty or absent values are not checked.
    type: dict
    default: {}
    suboptions:
      kb_checksum:
        description: C(kb.checksum) of C(/health).
        type: str
      model:
        description: C(model) of C(/health); with O(endpoint=models), a served model id.
        type: str
      version:
        description: C(version) (image version) of C(/health).
        type: str
      release:
        description: C(release) (the color's release fingerprint) of C(/health).
        type: str
  timeout:
    description:
      - Seconds O(mode=wait) waits at most.
    type: int
    default: 600
  interval:
    description:
      - Seconds between two polls.
    type: int
    default: 3
  questions:
    description:
      - The question set, required with O(mode=gate).
    type: list
    elements: dict
    suboptions:
      question:
        description: The question, asked as the only user message.
        type: str
        required: true
      expect_facts:
        description:
          - Strings the answer must contain (case-, width- and spacing-insensitive). An element may be a list of
            alternatives, for example C(["UDP 51820", "51820"]).
        type: list
        elements: raw
        required: true
      expect_source:
        description: Document the answer should cite (reported as a separate column; see O(require_source)).
        type: str
      language:
        description: Language of the question, reported in the table.
        type: str
  model:
    description:
      - Model name sent in the chat requests of O(mode=gate).
    type: str
    default: smollm2-135m-instruct
  max_tokens:
    description:
      - C(max_tokens) of each gate question (asked at temperature 0).
    type: int
    default: 64
  request_timeout:
    description:
      - Seconds one gate question may take.
    type: int
    default: 180
  threshold:
    description:
      - Lowest pass rate (0 to 1) accepted.
    type: float
    default: 0.8
  margin:
    description:
      - How far (0 to 1) the pass rate may fall under the baseline's.
    type: float
    default: 0.1
  pass_score:
    description:
      - Score (share of facts found) at which a question passes.
    type: float
    default: 1.0
  require_source:
    description:
      - A question passes only when its O(questions[].expect_source) is cited too.
    type: bool
    default: false
  baseline_container:
    description:
      - Container of the baseline (the active color) asked the same questions.
    type: str
  baseline_url:
    description:
      - Base URL of the baseline, used instead of O(baseline_container).
    type: str
  label:
    description:
      - Name of the probed server in messages and the table (default O(container) or O(url)).
    type: str
  baseline_label:
    description:
      - Name of the baseline in messages and the table (default O(baseline_container) or O(baseline_url)).
    type: str
seealso:
  - module: llmops.bluegreen.bluegreen_switch
"""

EXAMPLES = r"""
- name: Wait until the green qa-api serves the new release
  llmops.bluegreen.qa_probe:
    mode: wait
    container: qa-qa-green
    expect:
      kb_checksum: "{{ knowledge_base_checksum }}"
      model: smollm2-135m-instruct
      release: "{{ qa_service_release }}"
    timeout: 600

- name: Wait for the inference server to serve the model
  llmops.bluegreen.qa_probe:
    mode: wait
    endpoint: models
    container: qa-llm-green
    expect:
      model: smollm2-135m-instruct

- name: Gate green against blue
  llmops.bluegreen.qa_probe:
    mode: gate
    container: qa-qa-green
    baseline_container: qa-qa-blue
    label: green
    baseline_label: blue
    questions:
      - question: Which UDP port does the WireGuard VPN use?
        expect_source: vpn-howto.txt
        expect_facts: [["UDP 51820", "51820"]]
        language: en
    threshold: 0.8
    margin: 0.1
  register: gate
"""

RETURN = r"""
report:
  description:
    - With O(mode=wait), what the server reported when ready (C(/health) or C(/v1/models) JSON).
    - With O(mode=gate), the whole result, as saved by the release role - the A/B report of a release
      (both colors' answers, scores and seconds per question, and C(latency) per color).
  returned: success or gate refused
  type: dict
  sample: {"color": "green", "baseline": "blue", "pass_rate": 1.0, "baseline_pass_rate": 0.83,
           "threshold": 0.8, "margin": 0.1, "passed": true, "cache_hits": 0,
           "results": [{"question": "...", "language": "en", "score": 1.0, "facts_found": ["51820"],
                        "facts_missing": [], "expect_source": "vpn-howto.txt", "source_cited": true,
                        "answer": "...", "seconds": 2.1, "cache": "BYPASS", "error": null}],
           "baseline_results": [], "latency": {"green": {"p50": 2.1, "max": 2.6, "mean": 2.2}}}
timeline:
  description: With O(mode=wait), every change of status while waiting, with seconds since the start.
  returned: mode is wait
  type: list
  elements: dict
  sample: [{"t": 0.0, "status": "loading", "detail": "waiting for inference"}, {"t": 41.2, "status": "ready", "detail": null}]
elapsed:
  description: Seconds the module ran.
  returned: always
  type: float
pass_rate:
  description: Share of questions that passed on the probed server.
  returned: mode is gate
  type: float
baseline_pass_rate:
  description: The same on the baseline, or null without one.
  returned: mode is gate
  type: float
passed:
  description: Whether the gate accepted the server.
  returned: mode is gate
  type: bool
table:
  description: Printable lines, one per question, with the score and source column of both servers.
  returned: mode is gate
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import DOCKER_IMPORT_ERROR, HAS_DOCKER
from ansible_collections.llmops.bluegreen.plugins.module_utils._probe import (
    ProbeError,
    Target,
    ask,
    cache_hits,
    check_expectations,
    format_table,
    gate_verdict,
    latency,
    pass_rate,
    validate_questions,
    wait_ready,
)


def run_wait(params, target, result):
    expect = dict((k, v) for k, v in params['expect'].items() if v)
    if params['endpoint'] == 'models' and set(expect) - set(['model']):
        raise ProbeError('with endpoint=models only expect.model can be checked, got %s' % sorted(expect))
    report, timeline = wait_ready(target, params['endpoint'], params['timeout'], params['interval'])
    result.update(report=report, timeline=timeline)
    if params['endpoint'] == 'models':
        served = [m.get('id') for m in report.get('data') or [] if isinstance(m, dict)]
        mismatches = [('model', expect['model'], served)] if expect and expect['model'] not in served else []
    else:
        mismatches = check_expectations(report, expect)
    if mismatches:
        raise ProbeError('%s is ready but not serving what was deployed: %s' % (target.name, '; '.join(
            '%s: expected %s, reported %s' % item for item in mismatches)))


def run_gate(params, target, baseline, result):
    questions = validate_questions(params['questions'])
    label = params['label'] or target.name
    baseline_label = params['baseline_label'] or (baseline.name if baseline else None)
    hits_before = cache_hits(target)
    rows, baseline_rows = [], [] if baseline else None
    for question in questions:
        rows.append(ask(target, question, params['model'], params['max_tokens'], params['request_timeout']))
        if baseline:
            baseline_rows.append(ask(baseline, question, params['model'], params['max_tokens'],
                                     params['request_timeout']))
    hits_after = cache_hits(target)
    rate = pass_rate(rows, params['pass_score'], params['require_source'])
    baseline_rate = pass_rate(baseline_rows, params['pass_score'], params['require_source']) if baseline else None
    ok, message = gate_verdict(rate, baseline_rate, params['threshold'], params['margin'], label, baseline_label)
    report = dict(color=label, baseline=baseline_label, pass_rate=rate, baseline_pass_rate=baseline_rate,
                  threshold=params['threshold'], margin=params['margin'], pass_score=params['pass_score'],
                  require_source=params['require_source'], model=params['model'], max_tokens=params['max_tokens'],
                  passed=ok, results=rows, baseline_results=baseline_rows or [],
                  latency={label: latency(rows), baseline_label: latency(baseline_rows)} if baseline else {label: latency(rows)},
                  cache_hits=None if None in (hits_before, hits_after) else hits_after - hits_before,
                  time=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
    result.update(report=report, pass_rate=rate, baseline_pass_rate=baseline_rate, passed=ok, msg=message,
                  table=format_table(rows, label, baseline_rows, baseline_label))
    if not ok:
        raise ProbeError(message)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mode=dict(type='str', required=True, choices=['wait', 'gate']),
            container=dict(type='str'),
            url=dict(type='str'),
            port=dict(type='int', default=8000),
            headers=dict(type='dict', default={}),
            bearer_file=dict(type='str'),
            validate_certs=dict(type='bool', default=True),
            endpoint=dict(type='str', default='health', choices=['health', 'models']),
            expect=dict(type='dict', default={}, options=dict(
                kb_checksum=dict(type='str'), model=dict(type='str'),
                version=dict(type='str'), release=dict(type='str'))),
            timeout=dict(type='int', default=600),
            interval=dict(type='int', default=3),
            questions=dict(type='list', elements='dict', options=dict(
                question=dict(type='str', required=True),
                expect_facts=dict(type='list', elements='raw', required=True),
                expect_source=dict(type='str'),
                language=dict(type='str'))),
            model=dict(type='str', default='smollm2-135m-instruct'),
            max_tokens=dict(type='int', default=64, no_log=False),
            request_timeout=dict(type='int', default=180),
            threshold=dict(type='float', default=0.8),
            margin=dict(type='float', default=0.1),
            pass_score=dict(type='float', default=1.0, no_log=False),
            require_source=dict(type='bool', default=False),
            baseline_container=dict(type='str'),
            baseline_url=dict(type='str'),
            label=dict(type='str'),
            baseline_label=dict(type='str'),
        ),
        mutually_exclusive=[('container', 'url'), ('baseline_container', 'baseline_url')],
        required_one_of=[('container', 'url')],
        required_if=[('mode', 'gate', ('questions',))],
        supports_check_mode=True,
    )
    params = module.params
    if (params['container'] or params['baseline_container']) and not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib('docker'), exception=DOCKER_IMPORT_ERROR)
    started = time.monotonic()
    result = dict(changed=False)
    try:
        for name in ('threshold', 'margin', 'pass_score'):
            if not 0 <= params[name] <= 1:
                raise ProbeError('%s must be between 0 and 1, got %s' % (name, params[name]))
        if params['timeout'] < 0 or params['interval'] < 1:
            raise ProbeError('timeout must be >= 0 and interval >= 1')
        target = Target(params['container'], params['url'], params['port'], params['headers'], params['validate_certs'],
                        bearer_file=params['bearer_file'])
        if params['mode'] == 'wait':
            run_wait(params, target, result)
        else:
            baseline = None
            if params['baseline_container'] or params['baseline_url']:
                baseline = Target(params['baseline_container'], params['baseline_url'], params['port'],
                                  params['headers'], params['validate_certs'])
            run_gate(params, target, baseline, result)
    except ProbeError as exc:
        result.pop('msg', None)
        result.update(exc.details)
        module.fail_json(msg=str(exc), elapsed=round(time.monotonic() - started, 1), **result)
    result['elapsed'] = round(time.monotonic() - started, 1)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
