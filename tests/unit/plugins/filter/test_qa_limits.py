# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The qa-api's own limits reach its environment only when set, and bad values name the variable."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.filter.qa_limits import FilterModule

qa_limits = FilterModule().filters()['qa_limits']
UNSET = {'key_concurrency': None, 'inference_concurrency': None, 'inference_queue': None,
         'inference_queue_timeout': None}


def test_unset_limits_add_nothing_so_the_definition_and_its_fingerprint_stay():
    assert qa_limits(UNSET) == {}
    assert qa_limits({}) == {}


def test_the_fleet_limits_become_the_qa_api_environment():
    env = qa_limits(dict(UNSET, key_concurrency=0, inference_concurrency=1, inference_queue_timeout=120))
    # 0 is a value (no per-key limit), not "unset": it must reach the container.
    assert env == {'QA_KEY_CONCURRENCY': '0', 'QA_INFERENCE_CONCURRENCY': '1', 'QA_INFERENCE_QUEUE_TIMEOUT': '120'}


def test_values_from_yaml_strings_and_fractions():
    env = qa_limits({'inference_queue': '8', 'inference_queue_timeout': '2.5', 'key_concurrency': 3.0})
    assert env == {'QA_INFERENCE_QUEUE': '8', 'QA_INFERENCE_QUEUE_TIMEOUT': '2.5', 'QA_KEY_CONCURRENCY': '3'}


@pytest.mark.parametrize('limits, words', [
    ({'inference_concurrency': 0}, ['qa_service_inference_concurrency is 0', 'at least 1']),
    ({'key_concurrency': -1}, ['qa_service_key_concurrency is -1', 'at least 0']),
    ({'inference_queue_timeout': 0}, ['qa_service_inference_queue_timeout is 0', 'above 0']),
    ({'inference_queue': 'many'}, ["qa_service_inference_queue is 'many'", 'whole number']),
    ({'key_concurrency': 2.5}, ['qa_service_key_concurrency is 2.5', 'whole number']),
    ({'key_concurrency': True}, ['qa_service_key_concurrency is True']),
    ({'queue': 3}, ['unknown limit(s) queue', 'inference_queue']),
])
def test_bad_values_name_the_variable_and_the_fix(limits, words):
    with pytest.raises(AnsibleFilterError) as err:
        qa_limits(limits)
    for word in words:
        assert word in str(err.value)


def test_not_a_dict_is_refused():
    with pytest.raises(AnsibleFilterError, match='takes a dict'):
        qa_limits([1])
