# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names of a service come from one place."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.filter.container_networks import FilterModule as ContainerNetworks
from ansible_collections.llmops.bluegreen.plugins.filter.names import FilterModule
from ansible_collections.llmops.bluegreen.plugins.module_utils._names import container_networks, names


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


def test_the_internal_network_is_named_with_the_service():
    n = names('qa', '/var/lib/llmops')
    assert n['internal_network'] == 'qa-internal' and n['network'] == 'qa-net'
    assert FilterModule().filters()['names']('x', '/srv', 'edge', 'core')['internal_network'] == 'core'


def test_a_container_without_egress_joins_the_internal_network_only():
    attach = ContainerNetworks().filters()['container_networks']
    # ndots:1: a stopped container's name fails at once instead of a 10 s lookup outside.
    assert attach('qa-internal') == {'networks': [{'name': 'qa-internal'}], 'network_mode': 'qa-internal',
                                     'dns_opts': ['ndots:1']}
    assert attach('qa-internal', None) == attach('qa-internal', '') == attach('qa-internal')


def test_with_egress_the_egress_network_comes_first():
    # network_mode stays the egress network, so a container of an earlier version (on it only)
    # gains the internal one by a live connect instead of a recreation.
    # No DNS options: a holder of an earlier version given new ones would be recreated.
    assert container_networks('qa-internal', 'qa-net') == {
        'networks': [{'name': 'qa-net'}, {'name': 'qa-internal'}], 'network_mode': 'qa-net', 'dns_opts': []}
    assert container_networks('same', 'same')['networks'] == [{'name': 'same'}]


def test_no_internal_network_is_refused_with_the_fix():
    with pytest.raises(AnsibleFilterError) as err:
        ContainerNetworks().filters()['container_networks']('', 'qa-net')
    assert 'llmops_internal_network' in str(err.value)
