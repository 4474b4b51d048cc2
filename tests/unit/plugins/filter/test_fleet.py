# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement of a service from the inventory groups: one host, or a gateway and a host per color."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.filter.fleet import FilterModule
from ansible_collections.llmops.bluegreen.plugins.module_utils._fleet import FleetError, fleet, host_roles

FLEET = {'llmops': ['gw', 'b1', 'g1'], 'llmops_gateway': ['gw'], 'llmops_blue': ['b1'], 'llmops_green': ['g1']}
ADDR = {'gw': {'llmops_private_address': '10.0.0.1'}, 'b1': {'llmops_private_address': '10.0.0.2'},
        'g1': {'llmops_private_address': '10.0.0.3'}, 'b2': {'llmops_private_address': 'blue-2.lan'}}


def test_the_local_inventory_keeps_container_names():
    # inventories/local: llmops and llmops_gateway only, no private address anywhere.
    p = fleet({'llmops': ['localhost'], 'llmops_gateway': ['localhost']}, {}, 'qa')
    assert p['gateway'] == 'localhost' and p['remote'] is False and p['hosts'] == ['localhost']
    assert p['colors']['blue']['upstreams'] == ['qa-qa-blue:8000']
    assert p['colors']['green'] == {'hosts': ['localhost'], 'upstreams': ['qa-qa-green:8000'],
                                    'publish': {'localhost': []}, 'redis': {'localhost': 'qa-redis'}}
    assert p['redis'] == {'host': 'localhost', 'address': 'qa-redis', 'publish': []}
    # Without llmops_gateway the llmops group names the gateway.
    assert fleet({'llmops': ['h']}, {}, 'svc')['colors']['blue']['upstreams'] == ['svc-qa-blue:8000']
    # `-i localhost,`: one host and no groups.
    assert fleet({'all': ['localhost'], 'ungrouped': ['localhost']}, {}, 'qa')['gateway'] == 'localhost'


def test_a_fleet_reaches_each_color_on_its_private_interface():
    p = fleet(FLEET, ADDR, 'qa')
    assert p['remote'] is True and p['hosts'] == ['gw', 'b1', 'g1']
    assert p['colors']['blue']['upstreams'] == ['10.0.0.2:8100']
    assert p['colors']['green']['upstreams'] == ['10.0.0.3:8100']
    # The same published_ports on every host of a color: the bind address is the host network's.
    assert p['colors']['blue']['publish'] == {'b1': ['8100:8000']}
    # Redis on the gateway host, published there and reached by its private address.
    assert p['redis'] == {'host': 'gw', 'address': '10.0.0.1', 'publish': ['10.0.0.1:6379:6379']}
    assert p['colors']['green']['redis'] == {'g1': '10.0.0.1'}
    assert host_roles(p, 'gw') == ['gateway', 'redis'] and host_roles(p, 'b1') == ['blue']


def test_several_servers_per_color_and_a_redis_host():
    groups = dict(FLEET, llmops_blue=['b1', 'b2'], llmops_redis=['r1'])
    p = fleet(groups, dict(ADDR, r1={'llmops_private_address': '10.0.0.9'}), 'qa')
    assert p['colors']['blue']['upstreams'] == ['10.0.0.2:8100', 'blue-2.lan:8100']
    assert p['redis']['host'] == 'r1' and p['colors']['blue']['redis'] == {'b1': '10.0.0.9', 'b2': '10.0.0.9'}
    assert p['hosts'] == ['gw', 'r1', 'b1', 'b2', 'g1']


def test_the_same_release_has_the_same_published_port_on_both_colors():
    # The port is in the definition, so in the fingerprint: blue and green must not differ by it.
    p = fleet(FLEET, ADDR, 'qa')
    assert p['colors']['blue']['publish']['b1'] == p['colors']['green']['publish']['g1'] == ['8100:8000']


def test_a_color_on_the_gateway_host_next_to_a_remote_one():
    groups = {'llmops_gateway': ['gw'], 'llmops_blue': ['gw'], 'llmops_green': ['g1']}
    p = fleet(groups, ADDR, 'qa')
    assert p['colors']['blue']['upstreams'] == ['qa-qa-blue:8000']
    assert p['colors']['blue']['redis'] == {'gw': 'qa-redis'}
    assert p['colors']['green']['upstreams'] == ['10.0.0.3:8100']


@pytest.mark.parametrize('groups, hostvars, words', [
    ({}, {}, 'no gateway host'),
    ({'all': ['a', 'b']}, {}, 'no gateway host'),
    ({'llmops_gateway': ['a', 'b']}, {}, 'llmops_gateway has 2 hosts'),
    (FLEET, dict(ADDR, b1={}), 'host b1 has no llmops_private_address but the gateway reaches its blue qa-api there'),
    (FLEET, {'b1': ADDR['b1']}, 'host gw has no llmops_private_address but qa-api servers on other hosts reach its Redis'),
    (FLEET, dict(ADDR, b1={'llmops_private_address': '0.0.0.0'}), "host b1: llmops_private_address '0.0.0.0'"),
    (FLEET, dict(ADDR, g1={'llmops_private_address': '10.0.0.3; evil'}), 'host g1: llmops_private_address'),
    (dict(FLEET, llmops_blue=['b1', 'b1']), ADDR, 'llmops_blue lists a host twice'),
    (dict(FLEET, llmops_redis=['b1', 'g1']), ADDR, 'llmops_redis has 2 hosts'),
    (dict(FLEET, llmops_green=['g1', 'b1']), ADDR, 'host b1 is in both llmops_blue and llmops_green'),
    (dict(FLEET, llmops_green='g1'), ADDR, 'llmops_green must be a list'),
])
def test_an_inventory_that_is_no_fleet_is_refused(groups, hostvars, words):
    with pytest.raises(FleetError) as err:
        fleet(groups, hostvars, 'qa')
    assert words in str(err.value)


def test_the_filter_names_the_host_and_reads_only_the_address():
    class Broken(dict):
        def get(self, key, default=None):
            if key == 'llmops_private_address':
                raise ValueError("'undefined_var' is undefined")
            return super().get(key, default)

    flt = FilterModule().filters()['fleet']
    assert flt(FLEET, ADDR, 'qa')['colors']['green']['upstreams'] == ['10.0.0.3:8100']
    with pytest.raises(AnsibleFilterError) as err:
        flt(FLEET, dict(ADDR, g1=Broken()), 'qa')
    assert 'host g1: llmops_private_address' in str(err.value)
    with pytest.raises(AnsibleFilterError) as err:
        flt(FLEET, {'gw': ADDR['gw']}, 'qa')
    assert 'host b1 has no llmops_private_address' in str(err.value)


def test_each_host_gets_only_the_images_it_runs():
    groups = dict(FLEET, llmops_redis=['r1'], llmops=FLEET['llmops'] + ['r1'])
    hostvars = dict(ADDR, r1={'llmops_private_address': '10.0.0.9'})
    p = fleet(groups, hostvars, 'qa')
    images = FilterModule().filters()['fleet_images']
    # Independent inference: each color host its qa-api and its own llama.cpp; no gateway, Redis or Prometheus.
    assert images(p, 'b1', monitoring=True, shared_inference=False) == ['llm-llamacpp', 'qa-api']
    assert images(p, 'g1', shared_inference=False) == ['llm-llamacpp', 'qa-api']
    # The gateway host builds the knowledge base with the qa-api image; Prometheus only when monitored.
    assert images(p, 'gw', monitoring=True, shared_inference=False) == ['gateway', 'prometheus', 'qa-api']
    assert images(p, 'gw', shared_inference=False) == ['gateway', 'qa-api']
    assert images(p, 'r1') == ['redis']
    # Shared inference runs on the gateway host; vLLM is not one of the collection's images.
    assert images(p, 'gw') == ['gateway', 'llm-llamacpp', 'qa-api']
    assert images(p, 'b1') == ['qa-api']
    assert images(p, 'b1', shared_inference=False, llamacpp=False) == ['qa-api']
    # One host runs everything; a host of no group gets nothing.
    one = fleet({'llmops': ['localhost']}, {}, 'qa')
    assert images(one, 'localhost', monitoring=True) == ['gateway', 'llm-llamacpp', 'prometheus', 'qa-api', 'redis']
    assert images(p, 'elsewhere') == []
