# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role's routes become QA_LLM_ROUTES, key mounts and key files; the qa-api's own parser
(images/qa-api/qa_api/routing.py, stdlib only, loaded by path) reads what the filter writes."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import json
import os

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.bluegreen.plugins.filter.llm_routes import FilterModule

ROUTES = FilterModule().filters()['llm_routes']
SECRETS = '/var/lib/llmops/qa/secrets'
KEY = 'sk-filter-2718281828SECRET'
QA_ROUTING = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'images', 'qa-api',
                          'qa_api', 'routing.py')
TABLE = [{'model': 'gpt-4o-mini', 'backends': [
    {'name': 'provider', 'url': 'https://api.example.com/v1/', 'model': 'gpt-4o-mini-2024', 'api_key': KEY},
    {'name': 'spare', 'url': 'http://mirror:8000/v1', 'api_key': ''}]},
    {'model': u'\u5185\u90e8-qwen', 'backends': [{'name': 'qwen', 'url': 'http://qwen:8000/v1', 'model': None}]}]


def qa_routing():
    spec = importlib.util.spec_from_file_location('qa_api_contract_routing', QA_ROUTING)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_routes_become_env_naming_files_mounts_and_secrets():
    described = ROUTES(TABLE, SECRETS + '/', 'smollm2-135m-instruct', ['backend0'])
    assert set(described['env']) == {'QA_LLM_ROUTES'}
    assert json.loads(described['env']['QA_LLM_ROUTES']) == [
        {'model': 'gpt-4o-mini', 'backends': [
            {'name': 'provider', 'url': 'https://api.example.com/v1', 'model': 'gpt-4o-mini-2024',
             'api_key_file': '/run/secrets/llm_route_key_provider'},
            {'name': 'spare', 'url': 'http://mirror:8000/v1', 'model': 'gpt-4o-mini'}]},
        {'model': u'\u5185\u90e8-qwen', 'backends': [
            {'name': 'qwen', 'url': 'http://qwen:8000/v1', 'model': u'\u5185\u90e8-qwen'}]}]
    assert described['mounts'] == [{'type': 'bind', 'source': SECRETS + '/llm_route_key_provider',
                                    'target': '/run/secrets/llm_route_key_provider', 'read_only': True}]
    assert described['secrets'] == {'llm_route_key_provider': KEY}
    assert KEY not in json.dumps([described['env'], described['mounts']])
    # the same table gives the same text (it is part of the release fingerprint)
    assert ROUTES(TABLE, SECRETS, 'smollm2-135m-instruct')['env'] == described['env']


def test_the_qa_api_reads_what_the_filter_writes():
    described = ROUTES(TABLE, SECRETS, 'smollm2-135m-instruct', ['backend0'])
    files = dict(('/run/secrets/' + name, key) for name, key in described['secrets'].items())
    routes = qa_routing().parse_routes(described['env']['QA_LLM_ROUTES'], files.__getitem__)
    assert [(r.model, [(b.name, b.base_url, b.model, b.api_key) for b in r.backends]) for r in routes] == [
        ('gpt-4o-mini', [('provider', 'https://api.example.com/v1', 'gpt-4o-mini-2024', KEY),
                         ('spare', 'http://mirror:8000/v1', 'gpt-4o-mini', None)]),
        (u'\u5185\u90e8-qwen', [('qwen', 'http://qwen:8000/v1', u'\u5185\u90e8-qwen', None)])]


def test_no_routes_render_nothing_and_the_default_model_is_checked():
    assert ROUTES([], SECRETS, 'm') == {'env': {}, 'mounts': [], 'secrets': {}}
    assert ROUTES([], SECRETS, 'm', default_model='m')['env'] == {}  # the built-in route: nothing to say
    assert ROUTES(TABLE, SECRETS, 'm', default_model='gpt-4o-mini')['env']['QA_LLM_DEFAULT_MODEL'] == 'gpt-4o-mini'
    with pytest.raises(AnsibleFilterError, match="qa_service_llm_default_model 'gpt-5' is no route's model"):
        ROUTES(TABLE, SECRETS, 'm', default_model='gpt-5')


@pytest.mark.parametrize('routes,message', [
    ({'model': 'x'}, r'qa_service_llm_routes: must be a list'),
    ([{'model': 'm', 'backends': [{'name': 'b', 'url': 'http://x/v1'}], 'keys': 1}], r'\[0\]: a route is a dict'),
    ([{'model': '', 'backends': []}], r'\[0\]: model must be the name clients send'),
    ([{'model': 'smollm2', 'backends': [{'name': 'b', 'url': 'http://x/v1'}]}],
     r"'smollm2' has a route already \(qa_service_llm_model\)"),
    ([{'model': 'a', 'backends': [{'name': 'b', 'url': 'http://x/v1'}]},
      {'model': 'a', 'backends': [{'name': 'c', 'url': 'http://x/v1'}]}], r"\[1\]: the model 'a' has a route already"),
    ([{'model': 'a', 'backends': []}], r'\[0\]: backends must be a non-empty list'),
    ([{'model': 'a', 'backends': [{'name': 'backend0', 'url': 'http://x/v1'}]}],
     r"\[0\].backends\[0\]: the backend name 'backend0' is taken"),
    ([{'model': 'a', 'backends': [{'name': '../etc', 'url': 'http://x/v1'}]}], r"name '../etc': letters, digits"),
    ([{'model': 'a', 'backends': [{'name': 'b', 'url': 'x.example/v1'}]}], r'url must be an http\(s\) base URL'),
    ([{'model': 'a', 'backends': [{'name': 'b', 'url': 'http://x/v1', 'api_key_file': '/k'}]}],
     r'unknown key\(s\) api_key_file'),
])
def test_a_bad_table_is_refused_naming_the_route_and_backend(routes, message):
    with pytest.raises(AnsibleFilterError, match=message):
        ROUTES(routes, SECRETS, 'smollm2', ['backend0'])
