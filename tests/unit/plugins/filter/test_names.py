# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names of a service come from one place."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.filter.names import FilterModule
from ansible_collections.llmops.bluegreen.plugins.module_utils._names import names


def test_names_follow_the_contract():
    n = FilterModule().filters()['names']('qa', '/var/lib/llmops/')
    assert n['gateway'] == 'qa-gateway' and n['redis'] == 'qa-redis' and n['network'] == 'qa-net'
    assert n['qa'] == {'blue': 'qa-qa-blue', 'green': 'qa-qa-green'}
    assert n['llm'] == {'blue': 'qa-llm-blue', 'green': 'qa-llm-green', 'shared': 'qa-llm'}
    assert n['upstream']['green'] == 'qa-qa-green:8000'
    assert n['state'] == '/var/lib/llmops/qa/state.json'
    assert n['upstreams'] == '/var/lib/llmops/qa/nginx/upstreams.conf'
    assert names('x', '/srv', 'custom-net')['network'] == 'custom-net'


def test_monitoring_names():
    n = names('qa', '/var/lib/llmops')
    assert (n['prometheus'], n['redis_exporter'], n['nginx_exporter']) == \
        ('qa-prometheus', 'qa-redis-exporter', 'qa-nginx-exporter')
    assert (n['prometheus_port'], n['redis_exporter_port'], n['nginx_exporter_port']) == (9090, 9121, 9113)
    assert n['qa_job'] == 'qa-api' and n['gateway_status_port'] == 8081
    assert n['prometheus_conf_dir'] == '/var/lib/llmops/qa/monitoring/conf'
    assert n['prometheus_candidate_dir'] == '/var/lib/llmops/qa/monitoring/candidate'


@pytest.mark.parametrize('bad', ['', 'Qa', '../etc', 'a b', None])
def test_bad_service_names_are_refused(bad):
    with pytest.raises(AnsibleFilterError) as err:
        FilterModule().filters()['names'](bad)
    assert 'invalid service name' in str(err.value)
