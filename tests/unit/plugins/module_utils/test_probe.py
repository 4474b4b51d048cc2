# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scoring of the quality gate and the wait loop: pure functions, no Docker, no network."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest
import yaml

from _fakes import Clock
from ansible_collections.llmops.bluegreen.plugins.module_utils import _probe
from ansible_collections.llmops.bluegreen.plugins.module_utils._probe import (
    ProbeError, check_expectations, find_fact, format_table, gate_verdict, latency, metric_value, normalize,
    pass_rate, score_answer, split_answer, validate_questions, wait_ready)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
VPN = {'question': 'Which UDP port does the WireGuard VPN use?', 'expect_source': 'vpn-howto.txt',
       'expect_facts': [['UDP 51820', '51820'], 'WireGuard'], 'language': 'en'}


@pytest.mark.parametrize('text, fact, found', [
    ('The VPN uses port 51820/udp.', '51820', '51820'),
    ('It listens on ５１８２０.', '51820', '51820'),                  # full-width digits
    ('WIREGUARD over udp', 'WireGuard', 'WireGuard'),                # case
    ('最多可以提前14天预订', '14 天', '14 天'),                        # spacing around CJK
    ('最多可以提前 14  天预订', '14 天', '14 天'),
    ('port 151820', '51820', None),                                   # digits do not run on
    ('port 518200', '51820', None),
    ('within 11 hours', '1 hour', None),
    ('within 1 hour', '1 hour', '1 hour'),
    ('within 1 hours', '1 hour', '1 hour'),                           # a letter may follow a word
    ('uses UDP port 51820', ['UDP 51820', '51820'], '51820'),         # first alternative found wins
    ('UDP 51820 it is', ['UDP 51820', '51820'], 'UDP 51820'),
    ('core hours are 10:00 to 16:00', '10:00', '10:00'),
    ('', '25 days', None),
])
def test_find_fact(text, fact, found):
    assert find_fact(text, fact) == found


def test_normalize_width_case_space():
    assert normalize('  ＡＢＣ\tdef\n１２ ') == 'abc def 12'


def test_facts_are_looked_for_in_the_answer_not_in_the_sources_line():
    question = {'question': 'q', 'expect_facts': ['vpn-howto'], 'expect_source': 'vpn-howto.txt'}
    row = score_answer(question, 'I do not know.\n\nSources: vpn-howto.txt')
    assert row['score'] == 0.0 and row['facts_missing'] == ['vpn-howto']
    assert row['source_cited'] is True and row['answer'] == 'I do not know.'


def test_score_is_the_share_of_facts_found_and_source_is_a_separate_column():
    row = score_answer(VPN, 'WireGuard uses port 51820.\n\nSources: employee-handbook.md')
    assert row['score'] == 1.0 and row['facts_found'] == ['51820', 'WireGuard']
    assert row['source_cited'] is False
    half = score_answer(VPN, 'The VPN uses port 51820.\n\nSources: vpn-howto.txt')
    assert half['score'] == 0.5 and half['facts_missing'] == ['WireGuard'] and half['source_cited'] is True


def test_source_from_the_sources_field_counts():
    row = score_answer(VPN, 'Port 51820 (WireGuard).', [{'source': 'vpn-howto.txt', 'chunk': 0, 'score': 0.7}])
    assert row['source_cited'] is True and row['score'] == 1.0


def test_one_token_answer_fails():
    row = score_answer(VPN, 'The\n\nSources: vpn-howto.txt')
    assert row['score'] == 0.0 and pass_rate([row]) == 0.0


def test_split_answer():
    assert split_answer('A.\n\nSources: a.md, b.pdf') == ('A.', ['a.md', 'b.pdf'])
    assert split_answer('A.\n\nSources: none') == ('A.', [])
    assert split_answer('No sources line') == ('No sources line', [])


def test_pass_rate_threshold_and_source_requirement():
    rows = [dict(score=1.0, source_cited=True), dict(score=0.5, source_cited=True),
            dict(score=1.0, source_cited=False), dict(score=1.0, source_cited=None),
            dict(score=1.0, source_cited=True, error='HTTP 502')]
    assert pass_rate(rows) == 0.6
    assert pass_rate(rows, pass_score=0.5) == 0.8
    assert pass_rate(rows, require_source=True) == 0.4
    assert pass_rate([]) == 0.0


@pytest.mark.parametrize('rate, base, ok, words', [
    (0.9, None, True, ['passed', '0.90']),
    (0.7, None, False, ['threshold 0.80', 'green pass rate 0.70']),
    (0.8, 1.0, False, ['green pass rate 0.80', 'blue 1.00', 'margin 0.10']),
    (0.9, 1.0, True, ['green pass rate 0.90', 'blue 1.00']),   # exactly at the margin passes
    (0.7, 0.6, False, ['threshold', 'blue 0.60']),               # a bad baseline does not excuse the threshold
    (1.0, 0.5, True, ['green pass rate 1.00', 'blue 0.50']),
])
def test_gate_verdict(rate, base, ok, words):
    verdict, message = gate_verdict(rate, base, 0.8, 0.1, 'green', 'blue')
    assert verdict is ok
    for word in words:
        assert word in message, message


def test_validate_questions_names_the_bad_entry():
    assert validate_questions([VPN])[0]['expect_source'] == 'vpn-howto.txt'
    with pytest.raises(ProbeError, match='empty'):
        validate_questions([])
    with pytest.raises(ProbeError, match='expect_facts'):
        validate_questions([{'question': 'Where?', 'expect_facts': []}])
    with pytest.raises(ProbeError, match='question 2'):
        validate_questions([VPN, {'question': 'Where?', 'expect_facts': [['x', 3]]}])


def test_format_table_has_both_colors_and_missing_facts():
    new = [score_answer(VPN, 'The\n\nSources: vpn-howto.txt')]
    old = [score_answer(VPN, 'WireGuard on 51820.\n\nSources: vpn-howto.txt')]
    lines = format_table(new, 'green', old, 'blue')
    assert lines[0].startswith('green') and 'blue' in lines[0]
    assert lines[1].split()[:6] == ['0.00', 'yes', '-', '1.00', 'yes', '-']
    assert 'missing: UDP 51820, WireGuard' in lines[1]
    timed = [dict(new[0], seconds=s) for s in (3.0, 1.0, 2.0)]
    lines = format_table(timed + [dict(new[0], seconds=0.1, error='HTTP 502')], 'green', timed * 2 + [old[0]], 'blue')
    assert lines[1].split()[:6] == ['0.00', 'yes', '3.00', '0.00', 'yes', '3.00']
    assert lines[-2:] == ['green latency: p50 2.00 s, max 3.00 s, mean 2.00 s',
                          'blue latency: p50 2.00 s, max 3.00 s, mean 2.00 s']
    assert latency([]) is None and latency([dict(new[0], error='timeout', seconds=1.0)]) is None
    errored = dict(new[0], error='HTTP 502: bad gateway')
    assert 'ERR' in format_table([errored], 'green')[1] and 'HTTP 502' in format_table([errored], 'green')[1]


def test_check_expectations_names_expected_and_reported():
    report = {'status': 'ready', 'model': 'm', 'version': 'v1', 'release': 'r1', 'kb': {'checksum': 'c1'}}
    assert check_expectations(report, {'kb_checksum': 'c1', 'model': 'm', 'version': '', 'release': None}) == []
    assert check_expectations(report, {'kb_checksum': '0' * 64, 'release': 'r2'}) == [
        ('kb_checksum', '0' * 64, 'c1'), ('release', 'r2', 'r1')]


def test_metric_value():
    text = '# HELP qa_cache_hits_total x\nqa_cache_hits_total 3.0\nqa_cache_hits_created 1.7e9\n'
    assert metric_value(text, 'qa_cache_hits_total') == 3.0
    assert metric_value(text, 'qa_cache_misses_total') is None


class FakeTarget(object):
    """Scripted /health answers and container states for the wait loop."""

    name = 'svc-qa-green'

    def __init__(self, health, states=None):
        self.health, self.states, self.polls = list(health), list(states or []), 0

    def state(self):
        if not self.states:
            return None
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def logs(self):
        return 'loading model\nFATAL: cannot open model file'

    def get_json(self, path):
        self.polls += 1
        item = self.health.pop(0) if len(self.health) > 1 else self.health[0]
        return (None, item) if isinstance(item, str) else (item, None)


def running(restarts=0):
    return {'status': 'running', 'exit_code': 0, 'oom_killed': False, 'error': None, 'restarts': restarts}


def test_wait_returns_the_report_and_the_timeline_of_status_changes():
    clock = Clock()
    target = FakeTarget(['connection refused', {'status': 'loading', 'detail': 'embedding'},
                         {'status': 'loading', 'detail': 'embedding'}, {'status': 'ready', 'model': 'm'}])
    report, timeline = wait_ready(target, timeout=60, interval=3, clock=clock, sleep=clock.sleep)
    assert report['status'] == 'ready'
    assert [(e['t'], e['status']) for e in timeline] == [(0, 'unreachable'), (3, 'loading'), (9, 'ready')]


def test_wait_fails_at_once_when_the_container_exits():
    clock = Clock()
    target = FakeTarget([{'status': 'loading'}], [running(), running(), dict(running(), status='exited', exit_code=137)])
    with pytest.raises(ProbeError) as exc:
        wait_ready(target, timeout=600, interval=3, clock=clock, sleep=clock.sleep)
    assert clock.now < 10
    assert 'exited, exit code 137' in str(exc.value) and 'FATAL: cannot open model file' in str(exc.value)
    assert [e['status'] for e in exc.value.details['timeline']] == ['loading']


def test_wait_fails_at_once_when_the_container_restarts():
    clock = Clock()
    target = FakeTarget([{'status': 'loading'}], [running(), running(), running(restarts=1)])
    with pytest.raises(ProbeError, match='restarted 1 times'):
        wait_ready(target, timeout=600, interval=3, clock=clock, sleep=clock.sleep)
    target = FakeTarget([{'status': 'loading'}], [running(), dict(running(), status='restarting', exit_code=1)])
    with pytest.raises(ProbeError, match='restarting, exit code 1'):
        wait_ready(target, timeout=600, interval=3, clock=clock, sleep=clock.sleep)


def test_wait_times_out_naming_the_last_status():
    clock = Clock()
    target = FakeTarget([{'status': 'loading', 'detail': 'waiting for inference'}], [running()])
    with pytest.raises(ProbeError) as exc:
        wait_ready(target, timeout=30, interval=3, clock=clock, sleep=clock.sleep)
    assert 'did not become ready within 30 s' in str(exc.value) and 'waiting for inference' in str(exc.value)
    assert 30 <= clock.now <= 33


def test_wait_fails_at_once_on_status_error():
    target = FakeTarget([{'status': 'error', 'error': 'kb checksum mismatch'}])
    with pytest.raises(ProbeError, match='kb checksum mismatch'):
        wait_ready(target, timeout=600, interval=3, clock=Clock(), sleep=lambda s: None)


def test_wait_timeline_is_bounded():
    clock = Clock()
    target = FakeTarget([{'status': 'loading', 'detail': 'step %d' % i} for i in range(100)] + [{'status': 'ready'}])
    report, timeline = wait_ready(target, timeout=1000, interval=1, clock=clock, sleep=clock.sleep)
    assert len(timeline) == _probe.TIMELINE_MAX and timeline[-1]['status'] == 'ready'


def test_the_bundled_question_set_is_valid():
    with open(os.path.join(REPO, 'examples', 'gate', 'handbook.yml')) as handle:
        data = yaml.safe_load(handle)
    questions = validate_questions(data['questions'])
    docs = set(os.listdir(os.path.join(REPO, 'examples', 'docs')))
    assert {q['language'] for q in questions} >= {'en', 'zh'}
    for question in questions:
        assert question['expect_source'] in docs, question


def test_wait_on_models_fails_at_once_when_the_server_wants_a_key():
    clock = Clock()
    target = FakeTarget(['no answer', 'HTTP 401'])
    with pytest.raises(ProbeError) as exc:
        wait_ready(target, endpoint='models', timeout=600, interval=3, clock=clock, sleep=clock.sleep)
    assert 'HTTP 401' in str(exc.value) and 'bearer_file' in str(exc.value)
    assert target.polls == 2, 'a refused key is not waited on'
