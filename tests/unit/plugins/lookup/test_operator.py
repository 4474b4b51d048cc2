# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit names the AWX user and job only for a real AWX job; -e values are shown as such."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.llmops.bluegreen.plugins.lookup.operator import LookupModule, controller_login
from ansible_collections.llmops.bluegreen.plugins.plugin_utils._operator import operator_of

LOGIN = 'runner@ctl'


def test_awx_job_names_user_and_job():
    result = operator_of({'awx_user_name': 'alice', 'awx_job_id': 42}, {'JOB_ID': '42'}, LOGIN)
    assert result == {'operator': 'alice (AWX job 42)', 'source': 'awx', 'user': 'alice', 'job': '42'}


def test_tower_names_are_used_when_awx_ones_are_absent():
    result = operator_of({'tower_user_name': 'bob', 'tower_job_id': '7'}, {'JOB_ID': '7'}, LOGIN)
    assert (result['operator'], result['source']) == ('bob (Tower job 7)', 'tower')


def test_awx_names_win_over_tower_names():
    variables = {'awx_user_name': 'alice', 'awx_job_id': 42, 'tower_user_name': 'old', 'tower_job_id': 42}
    assert operator_of(variables, {'JOB_ID': '42'}, LOGIN)['operator'] == 'alice (AWX job 42)'


@pytest.mark.parametrize('environ', [{}, {'JOB_ID': '41'}])
def test_awx_variables_outside_that_job_are_shown_as_extra_vars(environ):
    result = operator_of({'awx_user_name': 'alice', 'awx_job_id': 42}, environ, LOGIN)
    assert result['source'] == 'extra-vars'
    assert result['operator'] == 'alice (-e awx_user_name awx_job_id=42, not an AWX job; login runner@ctl)'


def test_user_name_without_job_id_is_not_credited_to_awx():
    result = operator_of({'awx_user_name': 'alice'}, {'JOB_ID': '42'}, LOGIN)
    assert result['operator'] == 'alice (-e awx_user_name, not an AWX job; login runner@ctl)'


def test_llmops_operator_is_shown_as_given():
    result = operator_of({'llmops_operator': 'carol'}, {}, LOGIN)
    assert (result['operator'], result['source']) == ('carol (-e llmops_operator; login runner@ctl)', 'llmops_operator')


def test_login_user_without_any_variable():
    assert operator_of({}, {'JOB_ID': '42'}, LOGIN) == {'operator': LOGIN, 'source': 'login', 'user': LOGIN, 'job': None}


def test_free_text_is_one_short_line():
    result = operator_of({'awx_user_name': 'eve\n{"forged": 1}' + 'x' * 500, 'awx_job_id': 1}, {'JOB_ID': '1'}, LOGIN)
    assert '\n' not in result['operator'] and len(result['user']) == 120


def test_lookup_reads_the_controller_environment(monkeypatch):
    monkeypatch.setenv('JOB_ID', '9')
    lookup = LookupModule()
    assert lookup.run([], {'awx_user_name': 'dave', 'awx_job_id': 9}) == ['dave (AWX job 9)']
    monkeypatch.delenv('JOB_ID')
    text = lookup.run([], {'awx_user_name': 'dave', 'awx_job_id': 9})[0]
    assert text.startswith('dave (-e ') and text.endswith('login %s)' % controller_login())
    assert lookup.run([], {}, detail=True)[0]['source'] == 'login'
