# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An upstreams.conf without the servers of removed containers (pure; the role's test is test_gateway_gone_colors)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.filter.upstreams_without import FilterModule
from ansible_collections.llmops.bluegreen.plugins.module_utils._reconcile import parse_upstreams
from ansible_collections.llmops.bluegreen.plugins.module_utils._upstreams import BOOTSTRAP, render

without = FilterModule().filters()['upstreams_without']
BLUE, GREEN = 'qa-qa-blue:8000', 'qa-qa-green:8000'
BOTH = {'blue': [BLUE], 'green': [GREEN]}


def test_nothing_gone_leaves_the_file_as_it_is():
    text = render('qa', BOTH, {'blue': 100})
    assert without(text, 'qa', ['qa-qa-other:8000']) == {'text': text, 'changed': False, 'dropped': {},
                                                         'weights': {'blue': 100, 'green': 0}}
    assert without(BOOTSTRAP, 'qa', [BLUE])['changed'] is False


def test_an_idle_color_gone_is_dropped_and_the_active_one_keeps_its_traffic():
    out = without(render('qa', BOTH, {'blue': 100}, keepalive=8), 'qa', [GREEN])
    assert out['changed'] and out['dropped'] == {'green': [GREEN]} and out['weights'] == {'blue': 100}
    assert out['text'] == render('qa', {'blue': [BLUE]}, {'blue': 100}, keepalive=8)
    assert GREEN not in out['text'] and 'keepalive 8;' in out['text']


def test_the_active_color_gone_sends_all_traffic_to_the_one_left():
    out = without(render('qa', BOTH, {'blue': 100}), 'qa', [BLUE])
    assert out['weights'] == {'green': 100} and out['dropped'] == {'blue': [BLUE]}
    assert parse_upstreams(out['text']) == {'weights': {'green': 100}, 'upstreams': {'green': [GREEN]}}
    # During a canary too: the color left takes the whole split.
    out = without(render('qa', BOTH, {'blue': 90, 'green': 10}, canary='green'), 'qa', [GREEN])
    assert parse_upstreams(out['text'])['weights'] == {'blue': 100} and 'split_clients' not in out['text']


def test_every_routed_container_gone_gives_the_bootstrap():
    out = without(render('qa', BOTH, {'green': 100}), 'qa', [BLUE, GREEN])
    assert out == {'text': BOOTSTRAP, 'changed': True, 'dropped': {'blue': [BLUE], 'green': [GREEN]}, 'weights': {}}


def test_a_color_that_keeps_a_server_keeps_its_weight_failover_and_canary():
    two = {'blue': [BLUE, 'qa-qa-blue2:8000'], 'green': [GREEN]}
    for failover in (True, False):
        text = render('qa', two, {'blue': 75, 'green': 25}, canary='green', failover=failover)
        out = without(text, 'qa', ['qa-qa-blue2:8000'])
        assert out['text'] == render('qa', BOTH, {'blue': 75, 'green': 25}, canary='green', failover=failover)
        assert out['weights'] == {'blue': 75, 'green': 25} and out['dropped'] == {'blue': ['qa-qa-blue2:8000']}


def test_a_file_not_rendered_by_the_switch_is_refused_naming_it():
    with pytest.raises(AnsibleFilterError, match='cannot drop the servers .* no "# weights:" line'):
        without('upstream llmops_blue {\n    server %s;\n}\n' % BLUE, 'qa', [BLUE])
