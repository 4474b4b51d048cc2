# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: llm_routes
short_description: The qa-api's routes by model as container environment, key mounts and secret files
version_added: 0.4.0
description:
  - Turns the role variable C(qa_service_llm_routes) into what the qa-api container is given
    (C(QA_LLM_ROUTES), C(QA_LLM_DEFAULT_MODEL), one read-only mount per backend key) and the
    secret files the role writes, so a key is never in the environment or the container definition.
  - Refuses a bad table with a message naming the route, the backend and the fix.
author:
  - llmops.bluegreen developers (@llmops)
options:
  _input:
    description:
      - The routes, a list of C({model, backends}); each backend is C({name, url, model, api_key}).
      - C(model) of a route is the name clients send; C(model) of a backend is the name it is sent
        (default the route's); C(api_key) is optional.
    type: list
    elements: dict
    required: true
  secrets_dir:
    description: Host directory of the service's secrets (where the role writes the key files).
    type: path
    required: true
  builtin_model:
    description: The built-in route's model (C(qa_service_llm_model)); no route may serve it again.
    type: str
    required: true
  taken:
    description: Names of the built-in route's backends; route backends need other names.
    type: list
    elements: str
    default: []
  default_model:
    description: The model of a request without one; empty means O(builtin_model).
    type: str
    default: ''
"""

EXAMPLES = r"""
- name: Describe the routes of a color's qa-api
  ansible.builtin.set_fact:
    __routes: >-
      {{ [{'model': 'gpt-4o-mini', 'backends': [{'name': 'provider', 'url': 'https://api.example.com/v1',
           'api_key': vault_provider_key}]}]
         | llmops.bluegreen.llm_routes('/var/lib/llmops/qa/secrets', 'smollm2-135m-instruct', ['backend0']) }}
"""

RETURN = r"""
_value:
  description: >-
    A dict with C(env) (the container's variables: C(QA_LLM_ROUTES) as compact sorted JSON naming key files,
    C(QA_LLM_DEFAULT_MODEL) when set; empty without routes), C(mounts) (one read-only bind mount per backend
    key, C(/run/secrets/llm_route_key_<backend>)) and C(secrets) (file name to key, for the secrets directory).
  type: dict
"""

import json
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

BACKEND_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$')
MODEL_NAME = re.compile(r'^\S(?:[^\x00-\x1f\x7f]{0,126}\S)?$')
URL = re.compile(r'^https?://[^\s/]+')
BACKEND_KEYS = ('name', 'url', 'model', 'api_key')
MOUNT_DIR = '/run/secrets'


def _fail(where, problem):
    raise AnsibleFilterError('qa_service_llm_routes%s: %s' % (where, problem))


def _text(value):
    return value.strip() if isinstance(value, string_types) else ''


def describe(routes, secrets_dir, builtin_model, taken=None, default_model=''):
    """The container's env, key mounts and secret files for ``routes``. Pure."""
    if not isinstance(routes, list):
        _fail('', 'must be a list of routes {model, backends}, got %s' % type(routes).__name__)
    models, names = [builtin_model], list(taken or [])
    table, mounts, secrets = [], [], {}
    for index, route in enumerate(routes):
        where = '[%d]' % index
        if not isinstance(route, dict) or set(route) - set(('model', 'backends')):
            _fail(where, 'a route is a dict with model (the name clients send) and backends, got %r'
                  % (sorted(route) if isinstance(route, dict) else route))
        model = route.get('model')
        if not isinstance(model, string_types) or not MODEL_NAME.match(model):
            _fail(where, 'model must be the name clients send (printable, at most 128 characters, '
                  'no surrounding blanks), got %r' % (model,))
        if model in models:
            _fail(where, 'the model %r has a route already (%s): one route per model'
                  % (model, 'qa_service_llm_model' if model == builtin_model else 'an earlier route'))
        models.append(model)
        backends = route.get('backends')
        if not isinstance(backends, list) or not backends:
            _fail(where, 'backends must be a non-empty list of {name, url, model, api_key}')
        described = []
        for position, backend in enumerate(backends):
            spot = '%s.backends[%d]' % (where, position)
            if not isinstance(backend, dict):
                _fail(spot, 'a backend is a dict {name, url, model, api_key}, got %r' % (backend,))
            unknown = sorted(set(backend) - set(BACKEND_KEYS))
            if unknown:
                _fail(spot, 'unknown key(s) %s; a backend has %s' % (', '.join(unknown), ', '.join(BACKEND_KEYS)))
            name, url = _text(backend.get('name')), _text(backend.get('url')).rstrip('/')
            if not BACKEND_NAME.match(name):
                _fail(spot, 'name %r: letters, digits, . _ - (at most 32; it names the backend in /health, '
                      'metrics and its key file)' % (backend.get('name'),))
            if name in names:
                _fail(spot, 'the backend name %r is taken (%s); backend names differ over all routes'
                      % (name, ', '.join(names)))
            names.append(name)
            if not URL.match(url):
                _fail(spot, 'url must be an http(s) base URL such as https://api.example.com/v1, got %r'
                      % (backend.get('url'),))
            entry = {'name': name, 'url': url, 'model': _text(backend.get('model')) or model}
            key = _text(backend.get('api_key'))
            if key:
                secret = 'llm_route_key_%s' % name
                entry['api_key_file'] = '%s/%s' % (MOUNT_DIR, secret)
                secrets[secret] = key
                mounts.append({'type': 'bind', 'source': '%s/%s' % (secrets_dir.rstrip('/'), secret),
                               'target': entry['api_key_file'], 'read_only': True})
            described.append(entry)
        table.append({'model': model, 'backends': described})
    env = {}
    if table:
        env['QA_LLM_ROUTES'] = json.dumps(table, sort_keys=True, separators=(',', ':'), ensure_ascii=False)
    if default_model:
        if default_model not in models:
            raise AnsibleFilterError('qa_service_llm_default_model %r is no route\'s model; models: %s'
                                     % (default_model, ', '.join(models)))
        if default_model != builtin_model:
            env['QA_LLM_DEFAULT_MODEL'] = default_model
    return {'env': env, 'mounts': mounts, 'secrets': secrets}


class FilterModule(object):
    def filters(self):
        return {'llm_routes': describe}
