# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the gateway serves against state.json, without Docker (module_utils/_reconcile.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._reconcile import (
    ReconcileError, StrayTraffic, audit_record, compare, parse_upstreams, repaired, served, stray_text)
from ansible_collections.llmops.bluegreen.plugins.module_utils._switch import new_state
from ansible_collections.llmops.bluegreen.plugins.module_utils._upstreams import BOOTSTRAP, render

UP = {'blue': ['qa-qa-blue:8000'], 'green': ['qa-qa-green:8000']}
R1, R2 = '1' * 64, '2' * 64


def health(color, release):
    return {'status': 'ready', 'color': color, 'model': 'm', 'version': 'v-' + color, 'release': release,
            'kb': {'version': 'kb-' + color, 'checksum': 'sum-' + color}}


def hits(color, count=10, status=200):
    return [(status, color, color if status == 200 else None, None)] * count


def state_on(color, release=R1):
    """The state a switch to ``color`` wrote (both colors deployed)."""
    weights = {'blue': 0, 'green': 0}
    weights[color] = 100
    return new_state('qa', None, UP, weights, color, None, {color: {UP[color][0]: health(color, release)}}, now='T0')


# -- parsing the rendered file --------------------------------------------------

@pytest.mark.parametrize('weights', [{'blue': 100, 'green': 0}, {'blue': 0, 'green': 100}, {'blue': 75, 'green': 25}])
def test_parse_what_render_writes(weights):
    assert parse_upstreams(render('qa', UP, weights, 16)) == {'weights': weights, 'upstreams': UP}


def test_parse_one_color_and_several_servers():
    upstreams = {'green': ['10.0.0.1:8000', '[fd00::1]:8000']}
    assert parse_upstreams(render('qa', upstreams, {'green': 100})) == {'weights': {'green': 100}, 'upstreams': upstreams}


def test_bootstrap_routes_nothing():
    assert parse_upstreams(BOOTSTRAP) == {'weights': {}, 'upstreams': {}}


@pytest.mark.parametrize('text, message', [
    ('upstream llmops_blue { server b:1; }\n', 'no "# weights:" line'),
    ('# weights: blue=60\nupstream llmops_blue { server b:1; }\n', 'adding up to 100'),
    ('# weights: blue=100 green=0\nupstream llmops_blue { server b:1; }\n', "'green=0' names no upstream block"),
    ('# weights: red=100\nupstream llmops_red { server r:1; }\n', 'llmops_red: not a color'),
    ('# weights: blue=100\nupstream llmops_blue { keepalive 3; }\n', 'llmops_blue has no server line'),
])
def test_a_file_not_rendered_here_is_refused(text, message):
    with pytest.raises(ReconcileError, match=message):
        parse_upstreams(text)


# -- config confirmed by requests -------------------------------------------------

def test_served_when_file_and_requests_agree():
    conf = parse_upstreams(render('qa', UP, {'blue': 0, 'green': 100}))
    routing = served(conf, hits('green') + [(None, None, None, 'timed out')])
    assert routing['active_colors'] == ['green'] and routing['seen'] == {'green': 10}
    split = served(parse_upstreams(render('qa', UP, {'blue': 90, 'green': 10})), hits('blue', 3))
    assert split['active_colors'] == ['blue', 'green'] and split['weights'] == {'blue': 90, 'green': 10}


def test_a_file_written_but_not_loaded_fails_naming_both():
    conf = parse_upstreams(render('qa', UP, {'blue': 0, 'green': 100}))
    with pytest.raises(ReconcileError) as exc:
        served(conf, hits('green', 7) + hits('blue', 3), 'https://127.0.0.1:48443/health')
    message = str(exc.value)
    assert 'upstreams.conf routes blue=0 green=100, but requests to https://127.0.0.1:48443/health were served by ' \
           'blue (3)' in message
    assert 'reload nginx to serve the file, or put upstreams.conf.bak back' in message


def test_strays_name_the_cause_the_caller_found():
    conf = parse_upstreams(render('qa', UP, {'blue': 0, 'green': 100}))
    with pytest.raises(StrayTraffic) as exc:
        served(conf, hits('blue', 4), 'U')
    stray = exc.value
    assert stray.strays == {'blue': 4}
    assert stray.summary() == 'upstreams.conf routes blue=0 green=100, but requests to U were served by blue (4)'
    down = stray_text(stray, down={'g1:8000': 'unreachable from the gateway (refused)'})
    assert 'clients are failed over to the other color because g1:8000 is unreachable from the gateway ' \
           '(refused); start those containers' in down and 'reload' not in down
    assert 'requests with the operator key (never failed over) were too, so the file was changed without a ' \
           'reload' in stray_text(stray, loaded=False)
    assert 'either the servers of the routed color do not answer' in str(stray)


def test_gateway_down_fails_naming_the_error_and_the_fix():
    conf = parse_upstreams(render('qa', UP, {'blue': 100, 'green': 0}))
    with pytest.raises(ReconcileError, match=r'routes blue=100 green=0, but every request to U failed '
                                             r'\(\[Errno 111\] Connection refused\); start the gateway'):
        served(conf, [(None, None, None, '[Errno 111] Connection refused')] * 3, 'U')


def test_header_and_body_naming_different_colors_fails():
    conf = parse_upstreams(render('qa', UP, {'blue': 100, 'green': 0}))
    with pytest.raises(ReconcileError, match='header color blue but a /health of color green'):
        served(conf, [(200, 'blue', 'green', None)])


def test_bootstrap_served_as_none():
    routing = served(parse_upstreams(BOOTSTRAP), [(503, 'none', 'none', None)] * 3)
    assert routing['active_colors'] == [] and routing['weights'] == {}


# -- comparing and repairing ------------------------------------------------------

def served_on(color):
    weights = {'blue': 0, 'green': 0}
    weights[color] = 100
    return served(parse_upstreams(render('qa', UP, weights)), hits(color))


def test_in_sync_is_no_mismatch():
    assert compare(state_on('blue'), served_on('blue'), {'blue': {UP['blue'][0]: health('blue', R1)}}) == []
    # A qa-api started without QA_RELEASE reports "": nothing to compare.
    assert compare(state_on('blue'), served_on('blue'), {'blue': {UP['blue'][0]: health('blue', '')}}) == []
    assert compare(None, served(parse_upstreams(BOOTSTRAP), [(503, 'none', 'none', None)]), {}) == []


def test_switch_killed_after_reload_is_repaired_to_the_served_color():
    before = state_on('blue')
    routing = served_on('green')
    green = {'green': {UP['green'][0]: health('green', R2)}}
    problems = compare(before, routing, green)
    assert problems == ['state.json names active blue, the gateway serves green',
                        'state.json has weights blue=100 green=0, the gateway routes blue=0 green=100',
                        'state.json records green release None, qa-qa-green:8000 reports %s' % R2]
    after = repaired('qa', before, routing, green, 'T1')
    assert (after['active'], after['previous'], after['serial']) == ('green', 'blue', before['serial'] + 1)
    assert after['weights'] == {'blue': 0, 'green': 100}
    assert after['colors']['green']['release'] == R2 and after['colors']['green']['kb_checksum'] == 'sum-green'
    assert after['colors']['green']['since'] == 'T1'
    assert after['colors']['blue'] == before['colors']['blue']  # the idle color's record is kept
    assert compare(after, routing, green) == []
    record = audit_record('qa', 'alice', before, after, problems, 0.5, 'T1')
    assert (record['action'], record['from'], record['to'], record['result']) == ('reconcile', 'blue', 'green', 'ok')
    assert record['before'] == {'active': 'blue', 'weights': {'blue': 100, 'green': 0}, 'serial': 1}
    assert record['mismatches'] == problems and record['serial'] == 2


def test_a_replaced_live_color_is_a_release_mismatch():
    problems = compare(state_on('blue', R1), served_on('blue'), {'blue': {UP['blue'][0]: health('blue', R2)}})
    assert problems == ['state.json records blue release %s, qa-qa-blue:8000 reports %s' % (R1, R2)]


def test_missing_state_is_rebuilt_from_what_is_served():
    routing = served_on('green')
    green = {'green': {UP['green'][0]: health('green', R2)}}
    assert compare(None, routing, green)[0] == 'state.json names active none, the gateway serves green'
    after = repaired('qa', None, routing, green, 'T')
    assert (after['active'], after['previous'], after['serial']) == ('green', None, 1)
    assert after['colors']['blue'] == {'upstreams': UP['blue'], 'since': 'T', 'kb_version': None,
                                       'kb_checksum': None, 'model': None, 'version': None, 'release': None}


def test_other_servers_in_the_file_are_a_mismatch():
    before = state_on('blue')
    moved = dict(UP, green=['10.0.0.9:8000'])
    routing = served(parse_upstreams(render('qa', moved, {'blue': 100})), hits('blue'))
    problems = compare(before, routing, {})
    assert problems == ["state.json has green servers ['qa-qa-green:8000'], upstreams.conf ['10.0.0.9:8000']"]
    assert repaired('qa', before, routing, {}, 'T')['colors']['green']['upstreams'] == ['10.0.0.9:8000']


def test_gateway_back_on_bootstrap_empties_the_routing():
    before = state_on('blue')
    routing = served(parse_upstreams(BOOTSTRAP), [(503, 'none', 'none', None)])
    problems = compare(before, routing, {})
    assert problems[0] == 'state.json names active blue, the gateway serves no color'
    after = repaired('qa', before, routing, {}, 'T')
    assert (after['active'], after['previous'], after['weights'], after['colors']) == (None, 'blue', {}, {})
