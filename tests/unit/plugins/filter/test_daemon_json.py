# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""daemon.json is merged with what the operator put on the host, never overwritten whole."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.filter.daemon_json import FilterModule

MERGE = FilterModule().filters()['daemon_json']
MANAGED = {'live-restore': True, 'log-driver': 'json-file', 'log-opts': {'max-size': '20m', 'max-file': '5'},
           'runtimes': {'nvidia': {'path': 'nvidia-container-runtime', 'runtimeArgs': []}}}


def test_operator_keys_are_kept_and_managed_keys_set():
    host = {'data-root': '/srv/docker', 'registry-mirrors': ['https://mirror.intra'], 'userns-remap': 'default',
            'live-restore': False, 'log-opts': {'max-size': '1g', 'labels': 'team'},
            'runtimes': {'runsc': {'path': '/usr/bin/runsc'}}}
    merged = MERGE(json.dumps(host), MANAGED)
    assert merged['data-root'] == '/srv/docker'
    assert merged['registry-mirrors'] == ['https://mirror.intra']
    assert merged['userns-remap'] == 'default'
    assert merged['live-restore'] is True and merged['log-driver'] == 'json-file'
    # Objects merge key by key: the operator's log label and own runtime stay.
    assert merged['log-opts'] == {'max-size': '20m', 'max-file': '5', 'labels': 'team'}
    assert set(merged['runtimes']) == {'runsc', 'nvidia'}


def test_no_file_gives_the_managed_keys_and_input_is_not_modified():
    assert MERGE('', MANAGED) == MANAGED
    assert MERGE('  \n', MANAGED) == MANAGED
    host = {'log-opts': {'max-size': '1g'}}
    MERGE(host, MANAGED)
    assert host == {'log-opts': {'max-size': '1g'}}


def test_merge_is_idempotent():
    once = MERGE(json.dumps({'data-root': '/srv/docker'}), MANAGED)
    assert MERGE(json.dumps(once), MANAGED) == once


@pytest.mark.parametrize('text, message', [('{"data-root": ', 'not valid JSON'), ('["a"]', 'not an object')])
def test_an_unreadable_file_is_refused_not_overwritten(text, message):
    with pytest.raises(AnsibleFilterError, match=message):
        MERGE(text, MANAGED)
