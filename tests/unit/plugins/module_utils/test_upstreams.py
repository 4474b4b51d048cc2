# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""upstreams.conf rendering (docs/contracts.md "Gateway"); nginx parses it in the docker tests."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._upstreams import (
    BOOTSTRAP,
    UpstreamError,
    full_weights,
    render,
)

BOTH = {'green': ['qa-qa-green:8000'], 'blue': ['qa-qa-blue:8000', '10.0.0.5:8000']}

GOLDEN_GREEN = """\
# Managed by llmops.bluegreen.bluegreen_switch for service qa; do not edit.
# weights: blue=0 green=100
upstream llmops_blue {
    server qa-qa-blue:8000;
    server 10.0.0.5:8000;
    keepalive 32;
}
upstream llmops_green {
    server qa-qa-green:8000;
    keepalive 32;
}
upstream llmops_green_failover {
    zone llmops_green_failover 64k;
    server qa-qa-green:8000;
    server qa-qa-blue:8000 backup;
    server 10.0.0.5:8000 backup;
    keepalive 32;
}
# X-QA-Color naming a deployed color overrides the weights, for operator keys only
# ($llmops_operator is set by the gateway role's nginx.conf).
map "$llmops_operator:$http_x_qa_color" $llmops_color {
    default green;
    "1:blue" blue;
    "1:green" green;
}
# The upstream block a request goes to (operator keys: always the chosen color's own).
map $llmops_operator $llmops_upstream {
    default ${llmops_color}_failover;
    1 $llmops_color;
}
"""

GOLDEN_CANARY = """\
# Managed by llmops.bluegreen.bluegreen_switch for service qa; do not edit.
# weights: blue=95 green=5
upstream llmops_blue {
    server qa-qa-blue:8000;
    server 10.0.0.5:8000;
    keepalive 32;
}
upstream llmops_green {
    server qa-qa-green:8000;
    keepalive 32;
}
upstream llmops_blue_failover {
    zone llmops_blue_failover 64k;
    server qa-qa-blue:8000;
    server 10.0.0.5:8000;
    server qa-qa-green:8000 backup;
    keepalive 32;
}
upstream llmops_green_failover {
    zone llmops_green_failover 64k;
    server qa-qa-green:8000;
    server qa-qa-blue:8000 backup;
    server 10.0.0.5:8000 backup;
    keepalive 32;
}
split_clients "${request_id}" $llmops_weighted_color {
    95% blue;
    * green;
}
# X-QA-Color naming a deployed color overrides the weights, for operator keys only
# ($llmops_operator is set by the gateway role's nginx.conf).
map "$llmops_operator:$http_x_qa_color" $llmops_color {
    default $llmops_weighted_color;
    "1:blue" blue;
    "1:green" green;
}
# The upstream block a request goes to (operator keys: always the chosen color's own).
map $llmops_operator $llmops_upstream {
    default ${llmops_color}_failover;
    1 $llmops_color;
}
"""


def test_single_color_golden():
    assert render('qa', BOTH, {'green': 100}) == GOLDEN_GREEN


def test_zero_weight_is_the_same_as_absent():
    assert render('qa', BOTH, {'green': 100, 'blue': 0}) == GOLDEN_GREEN


def test_canary_golden():
    assert render('qa', BOTH, {'blue': 95, 'green': 5}) == GOLDEN_CANARY


def test_tester_keys_go_to_the_canary_only_during_a_split():
    text = render('qa', BOTH, {'blue': 95, 'green': 5}, canary='green')
    assert text.startswith(GOLDEN_CANARY.split('# X-QA-Color', maxsplit=1)[0])
    assert ('map $llmops_tester $llmops_split_color {\n    default $llmops_weighted_color;\n    1 green;\n}\n'
            in text)
    assert 'default $llmops_split_color;' in text
    assert render('qa', BOTH, {'green': 100}, canary='green') == GOLDEN_GREEN


def test_output_does_not_depend_on_input_order():
    reordered = {'blue': ['qa-qa-blue:8000', '10.0.0.5:8000'], 'green': ['qa-qa-green:8000']}
    assert render('qa', reordered, {'green': 5, 'blue': 95}) == render('qa', BOTH, {'blue': 95, 'green': 5})


def test_only_deployed_colors_get_an_upstream():
    text = render('qa', {'blue': ['qa-qa-blue:8000']}, {'blue': 100})
    assert 'upstream llmops_blue {' in text
    assert 'llmops_green' not in text and 'green;' not in text
    assert 'default blue;' in text
    # Nothing to fail over to: every request goes to the color's own block.
    assert 'backup' not in text and '_failover' not in text
    assert 'map $llmops_operator $llmops_upstream {\n    default $llmops_color;\n}\n' in text


def test_failover_off_keeps_each_color_to_its_own_servers():
    text = render('qa', BOTH, {'blue': 95, 'green': 5}, failover=False)
    assert 'backup' not in text and '_failover' not in text
    assert text.endswith('map $llmops_operator $llmops_upstream {\n    default $llmops_color;\n}\n')


def test_an_idle_color_gets_no_failover_block():
    # No client is routed to a color without traffic (operators reach it through its own block).
    text = render('qa', BOTH, {'blue': 100})
    assert 'upstream llmops_blue_failover {' in text and 'llmops_green_failover' not in text


def test_full_weights_fills_missing_colors():
    assert full_weights(BOTH, {'green': 100}) == {'blue': 0, 'green': 100}


def test_bootstrap_answers_none():
    assert 'default none;' in BOOTSTRAP and 'upstream llmops_' not in BOOTSTRAP
    # nginx.conf proxies to llmops_$llmops_upstream: it must be defined before the first switch too.
    assert 'map "" $llmops_upstream {\n    default none;\n}' in BOOTSTRAP


def test_bootstrap_is_the_gateway_role_template():
    # The role writes it before the first switch; the module restores it on failure.
    here = os.path.dirname(os.path.abspath(__file__))
    template = os.path.join(here, '..', '..', '..', '..', 'roles', 'gateway', 'templates', 'upstreams.bootstrap.conf.j2')
    with open(template) as handle:
        assert handle.read() == BOOTSTRAP


def test_header_alone_never_picks_a_color():
    # Only "$llmops_operator:<color>" with operator 1 matches; a bare color name is no key.
    text = render('qa', BOTH, {'blue': 95, 'green': 5})
    assert 'map "$llmops_operator:$http_x_qa_color" $llmops_color {' in text
    block = text.split('map "', 1)[1].split('}', 1)[0]
    keys = [line.split()[0] for line in block.splitlines()[1:]]
    assert keys == ['default', '"1:blue"', '"1:green"']


@pytest.mark.parametrize('upstreams, weights, message', [
    (BOTH, {'blue': 60, 'green': 30}, 'weights must add up to 100, got 90 (blue=60, green=30)'),
    (BOTH, {'red': 100}, "unknown color 'red' in weights"),
    ({'red': ['x:1']}, {'red': 100}, "unknown color 'red' in upstreams"),
    ({'blue': ['qa-qa-blue:8000']}, {'blue': 50, 'green': 50}, 'weights.green is 50 but upstreams has no green servers'),
    ({'blue': []}, {'blue': 100}, 'upstreams.blue must be a non-empty list'),
    ({'blue': ['qa-qa-blue:8000; include /etc/passwd']}, {'blue': 100}, 'is not host:port'),
    ({'blue': ['qa-qa-blue']}, {'blue': 100}, 'is not host:port'),
    ({'blue': ['qa-qa-blue:99999']}, {'blue': 100}, 'is not host:port'),
    ({'blue': ['qa-qa-blue:8000']}, {'blue': 101, 'green': -1}, 'must be an integer 0..100'),
    ({}, {'blue': 100}, 'upstreams is empty'),
])
def test_invalid_input_is_named(upstreams, weights, message):
    with pytest.raises(UpstreamError) as exc:
        render('qa', upstreams, weights)
    assert message in str(exc.value)


def test_ipv6_server_is_accepted():
    assert 'server [fd00::5]:8000;' in render('qa', {'blue': ['[fd00::5]:8000']}, {'blue': 100})
