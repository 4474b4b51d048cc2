# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_slo: PromQL of a color's measures, parsing of Prometheus answers, the verdict."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils import _slo


def vector(value):
    return {'status': 'success', 'data': {'resultType': 'vector', 'result': [{'metric': {}, 'value': [1, value]}]}}


EMPTY = {'status': 'success', 'data': {'resultType': 'vector', 'result': []}}


def test_queries_select_the_color_and_the_window():
    q = _slo.queries('qa', 'green', '5m')
    sel = 'job="qa-api",service="qa",color="green",endpoint=~"/v1/.*"'
    assert q['requests'] == 'sum(increase(qa_requests_total{%s}[5m]))' % sel
    assert q['errors'] == 'sum(increase(qa_requests_total{%s,status=~"5.."}[5m]))' % sel
    assert q['p99'] == ('histogram_quantile(0.99, sum by (le) '
                        '(rate(qa_request_duration_seconds_bucket{%s}[5m])))' % sel)


@pytest.mark.parametrize('args, message', [
    (('Qa', 'blue', '5m', '/v1/.*'), 'invalid service name'),
    (('qa', 'red', '5m', '/v1/.*'), 'color must be one of blue, green'),
    (('qa', 'blue', '5 minutes', '/v1/.*'), 'not a Prometheus duration'),
    (('qa', 'blue', '', '/v1/.*'), 'not a Prometheus duration'),
    (('qa', 'blue', '5m', '/v1/("'), 'not a regular expression'),
    (('qa', 'blue', '5m', '/v1/"}'), 'must not contain quotes'),
])
def test_bad_inputs_are_refused(args, message):
    with pytest.raises(ValueError if 'service' in message else _slo.SLOError) as err:
        _slo.check_inputs(*args)
    assert message in str(err.value)


def test_windows_accepted():
    for window in ('30s', '5m', '1h30m', '2d'):
        _slo.check_inputs('qa', 'blue', window, '/v1/.*')


def test_parse_scalar():
    assert _slo.parse_scalar(vector('12.5')) == 12.5
    assert _slo.parse_scalar('{"status":"success","data":{"resultType":"vector","result":[]}}') is None
    assert _slo.parse_scalar(vector('NaN')) is None
    assert _slo.parse_scalar({'status': 'success', 'data': {'resultType': 'scalar', 'result': [1, '3']}}) == 3.0
    with pytest.raises(_slo.SLOError, match='bad_data: parse error'):
        _slo.parse_scalar({'status': 'error', 'errorType': 'bad_data', 'error': 'parse error'})
    with pytest.raises(_slo.SLOError, match='not JSON'):
        _slo.parse_scalar('<html>')
    two = vector('1')
    two['data']['result'] *= 2
    with pytest.raises(_slo.SLOError, match='expected one series'):
        _slo.parse_scalar(two)


def test_measure_asks_each_query_once():
    answers = {'requests': vector('200'), 'errors': vector('4'), 'p99': vector('1.5')}
    asked = []

    def query(promql):
        asked.append(promql)
        return answers[[k for k, v in _slo.queries('qa', 'blue', '2m').items() if v == promql][0]]

    m = _slo.measure(query, 'qa', 'blue', '2m')
    assert (m['requests'], m['errors'], m['error_rate'], m['p99_seconds']) == (200.0, 4.0, 0.02, 1.5)
    assert len(asked) == 3


def test_measure_without_series():
    m = _slo.measure(lambda promql: EMPTY, 'qa', 'blue', '5m')
    assert (m['requests'], m['errors'], m['error_rate'], m['p99_seconds']) == (0.0, 0.0, None, None)


def metrics(requests, errors, p99, window='5m'):
    return {'requests': requests, 'errors': errors, 'error_rate': errors / requests if requests else None,
            'p99_seconds': p99, 'window': window}


def test_pass():
    v = _slo.decide(metrics(100, 1, 2.0), max_error_rate=0.01, max_p99_seconds=5, min_requests=20)
    assert v['ok'] and v['status'] == 'pass' and v['breaches'] == []
    assert 'SLO met' in v['msg']


def test_error_rate_breach_names_metric_value_threshold():
    v = _slo.decide(metrics(100, 25, 2.0), max_error_rate=0.01, max_p99_seconds=5, min_requests=20)
    assert not v['ok'] and v['status'] == 'breach'
    assert v['breaches'] == [{'metric': 'error_rate', 'value': 0.25, 'threshold': 0.01}]
    assert v['msg'] == 'SLO breached: error_rate 0.25 > threshold 0.01'


def test_latency_breach_and_both():
    v = _slo.decide(metrics(100, 0, 7.5), max_p99_seconds=5)
    assert v['breaches'] == [{'metric': 'p99_seconds', 'value': 7.5, 'threshold': 5}]
    v = _slo.decide(metrics(100, 50, 7.5), max_p99_seconds=5)
    assert [b['metric'] for b in v['breaches']] == ['error_rate', 'p99_seconds']


def test_thresholds_are_inclusive():
    v = _slo.decide(metrics(100, 1, 5.0), max_error_rate=0.01, max_p99_seconds=5)
    assert v['ok']


def test_too_few_requests_is_not_a_pass_even_with_all_errors():
    v = _slo.decide(metrics(5, 5, 60.0), min_requests=20, max_p99_seconds=5)
    assert not v['ok'] and v['status'] == 'not_enough_traffic' and v['breaches'] == []
    assert v['msg'].startswith('not enough traffic: 5 requests in 5m, at least 20 needed')


def test_no_traffic_at_all():
    v = _slo.decide(metrics(0, 0, None))
    assert v['status'] == 'not_enough_traffic' and not v['ok']


def test_p99_unchecked_without_threshold_or_value():
    assert _slo.decide(metrics(100, 0, 99.0), max_p99_seconds=None)['ok']
    assert _slo.decide(metrics(100, 0, None), max_p99_seconds=1)['ok']
