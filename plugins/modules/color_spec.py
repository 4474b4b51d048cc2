#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: color_spec
short_description: Compute a color's desired spec and its release fingerprint
version_added: 0.2.0
description:
  - Computes, once per run, what a color must run - the container definitions Docker is given (each image
    resolved to its image ID), the content digest of every host path they bind-mount (model files,
    knowledge base), keyed digests of the secrets they read, and the knowledge base version - and the
    sha256 of that spec, the color's release fingerprint.
  - The fingerprint does not depend on which color it is computed for (the color's own names are replaced by
    a marker), so the same release has the same fingerprint on blue and green.
  - Returns the definitions, those of O(stamp) stamped with the fingerprint (label C(llmops.release) and
    C(QA_RELEASE) in the environment); apply exactly these with the llmops.bluegreen.container role.
  - Reports what the color's containers run now (their C(llmops.release) label), so a release decision can rest
    on what actually runs.
  - Stores each spec as O(state_dir)/O(service)/specs/<fingerprint>.json and caches file digests there, so a
    large model is hashed only when its size, mtime or inode changes.
author:
  - llmops.bluegreen developers (@llmops)
requirements:
  - Docker SDK for Python (C(docker)) on the host that runs the color (not needed with O(host_digests)).
extends_documentation_fragment:
  - llmops.bluegreen.attributes
  - llmops.bluegreen.attributes.service_state
attributes:
  check_mode:
    support: full
    details:
      - Computes the same fingerprint; writes neither the spec file nor the digest cache. An image that is not
        built yet is reported with a null image ID, a mounted path that does not exist yet as C(absent), each
        with a warning.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  color:
    description:
      - The color the definitions are for.
    type: str
    choices: [blue, green]
    required: true
  containers:
    description:
      - 'Container definitions by role, for example C({"qa": {...}, "llm": {...}}); a null value means no
        container (an external inference provider).'
      - Keys of a definition are the llmops.bluegreen.container role's options (C(name), C(image), C(command),
        C(env), C(labels), C(mounts), C(device_requests), limits, ...); an unknown key is refused.
    type: dict
    required: true
  stamp:
    description:
      - Roles in O(containers) whose container is the color's own release (the qa-api). They get the label
        C(llmops.release) and C(QA_RELEASE) in their environment, so the running container names its release.
      - Other roles (inference, which a release reuses when its definition is unchanged) count in the spec
        but are not stamped, so a knowledge base release never restarts a model server.
    type: list
    elements: str
    default: [qa]
  secrets:
    description:
      - Secret contents the containers read from files (for example the Redis password), by name. Only a keyed
        digest (HMAC-SHA256 with the service's spec key) enters the spec.
      - Bind mounts below the service's C(secrets) directory are left to this option, since their files may not
        hold the new content yet when the plan is made.
    type: dict
    default: {}
  kb:
    description:
      - 'The knowledge base the color serves, for example C({"version": "3fa2c1d9e8b7", "checksum": "..."}).'
    type: dict
    default: {}
  extra:
    description:
      - Anything else that changes what the color serves without being in a container definition.
    type: dict
    default: {}
  compare_to:
    description:
      - Fingerprint of the release the active color runs; when its stored spec exists, RV(changes) lists what differs.
    type: str
  host_digests:
    description:
      - The results of llmops.bluegreen.color_digests on each host of the color (a fleet, where the color's
        containers run on other hosts than this one). Image IDs and mount digests are then those hosts' own, and must
        agree between them; this host's Docker engine and files are not read, except for O(shipped).
      - Omitted, this host runs the color, and its own images and paths are hashed.
    type: list
    elements: dict
  shipped:
    description:
      - With O(host_digests), bind-mounted paths the release copies from this host to the color's hosts (a
        knowledge base version) - hashed here, and a host's existing copy must match.
    type: list
    elements: path
    default: []
"""

EXAMPLES = r"""
- name: Compute green's spec
  llmops.bluegreen.color_spec:
    service: qa
    color: green
    containers:
      qa: "{{ qa_service_definition }}"
      llm: "{{ inference_definition }}"
    secrets:
      redis_password: "{{ redis_password }}"
    kb:
      version: "{{ knowledge_base_version }}"
      checksum: "{{ knowledge_base_checksum }}"
  register: spec
  no_log: true
"""

RETURN = r"""
fingerprint:
  description: sha256 hex of the color-normalized spec; the release fingerprint.
  returned: success
  type: str
  sample: 9f2c...e1
spec:
  description: The spec (container definitions with image IDs, mount digests, secret digests, KB).
  returned: success
  type: dict
definitions:
  description: The definitions to apply, stamped with the fingerprint, by role.
  returned: success
  type: dict
observed:
  description: 'What each container of the color runs now: C(exists), C(running), C(release) (its label),
    C(image_id); with O(host_digests), on the first host of the list.'
  returned: success
  type: dict
spec_path:
  description: Where the spec is stored.
  returned: success
  type: str
changes:
  description: Dotted paths of the spec that differ from the one of O(compare_to) (at most 12).
  returned: when O(compare_to) is given
  type: list
  elements: str
  sample: ["containers.llm.env.LLM_THREADS"]
hashed_bytes:
  description: Bytes read to compute digests (0 when every file was in the digest cache).
  returned: success
  type: int
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmops.bluegreen.plugins.module_utils._atomic import atomic_write
from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import DOCKER_IMPORT_ERROR, HAS_DOCKER
from ansible_collections.llmops.bluegreen.plugins.module_utils._names import NamesError, names
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import SERVICE_STATE_ARGS, StateError, ensure_dir
from ansible_collections.llmops.bluegreen.plugins.module_utils._spec import (
    SpecError,
    build_spec,
    check_definition,
    describe_change,
    fingerprint,
    keyed_digest,
    merge_host_digests,
    stamp,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._spec_host import (
    HostDigests,
    image_ids,
    mounted_sources,
    observe,
    read_json,
)

if HAS_DOCKER:
    import docker
    from docker.errors import DockerException
else:
    class DockerException(Exception):  # only host_digests runs then; nothing raises it
        pass


def spec_key(module, paths):
    """The service's key for secret digests (0600), made once."""
    key_path = os.path.join(paths['secrets_dir'], 'spec.key')
    try:
        with open(key_path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError):
        pass
    key = os.urandom(32)
    if module.check_mode:
        return key
    ensure_dir(paths['secrets_dir'], 0o700)
    atomic_write(key_path, key, mode=0o600)
    return key


def local_inputs(module, paths, present, containers, digests):
    """This host runs the color: (image IDs, mount digests, observed) from its own engine and files."""
    mounts = {}
    for source in mounted_sources(present, paths['secrets_dir']):
        found = digests.digest(source, missing_ok=module.check_mode)
        if found is None:  # check mode: a KB version or model this dry run would create; its path names it
            module.warn('check mode: %s does not exist yet; the spec names it by path only' % source)
            found = 'absent'
        mounts[source] = found
    client = docker.from_env()
    ids = image_ids(client, present)
    for image, image_id in sorted(ids.items()):
        if image_id is None:
            if not module.check_mode:
                raise SpecError('image %s is not on this Docker host: build it (role llmops.bluegreen.images) '
                                'or ship it here first' % image)
            module.warn('check mode: image %s is not built yet; its ID is unknown' % image)
    return ids, mounts, observe(client, containers)


def fleet_inputs(module, digests):
    """The color runs on other hosts: their reports (color_digests) merged; shipped paths hashed here."""
    hosts = module.params['host_digests']
    for report in hosts:
        if not isinstance(report, dict) or not all(k in report for k in ('host', 'image_ids', 'mounts')):
            raise SpecError('host_digests takes the results of llmops.bluegreen.color_digests (host, image_ids, '
                            'mounts), one per host of the color')
    shipped = dict((path, digests.digest(path, missing_ok=module.check_mode) or 'absent')
                   for path in module.params['shipped'])
    ids, mounts, warnings = merge_host_digests(hosts, shipped, module.check_mode)
    for warning in warnings:
        module.warn(warning)
    return ids, mounts, hosts[0].get('observed') or {}


def run(module):
    params = module.params
    service, color = params['service'], params['color']
    paths = names(service, params['state_dir'])
    containers = params['containers']
    for role, definition in containers.items():
        if definition is not None:
            check_definition(role, definition)
    present = [d for d in containers.values() if d is not None]
    digests = HostDigests(paths['model_digests'])
    if params['host_digests'] is not None:
        ids, mounts, observed = fleet_inputs(module, digests)
    elif not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib('docker'), exception=DOCKER_IMPORT_ERROR)
    else:
        ids, mounts, observed = local_inputs(module, paths, present, containers, digests)
    key = spec_key(module, paths)
    secrets = dict((name, keyed_digest(key, value)) for name, value in params['secrets'].items())
    spec = build_spec(service, color, containers, ids, mounts, secrets, params['kb'], params['extra'])
    release = fingerprint(spec, service, color)
    definitions = {}
    for role, definition in containers.items():
        own = definition is not None and role in params['stamp']
        definitions[role] = stamp(definition, release, env=True) if own else definition
    spec_path = os.path.join(paths['specs_dir'], '%s.json' % release)
    if not module.check_mode:
        ensure_dir(paths['specs_dir'])
        if not os.path.exists(spec_path):
            atomic_write(spec_path, json.dumps(spec, indent=2, sort_keys=True) + '\n', mode=0o600)
        digests.save()
    result = dict(changed=False, fingerprint=release, spec=spec, definitions=definitions,
                  observed=observed, spec_path=spec_path, hashed_bytes=digests.hashed)
    if params['compare_to']:
        old = read_json(os.path.join(paths['specs_dir'], '%s.json' % params['compare_to']), None)
        old_color = (old or {}).get('color') or color
        result['changes'] = [] if params['compare_to'] == release else describe_change(old, spec, service, old_color, color)
    module.exit_json(**result)


def main():
    argument_spec = dict(
        SERVICE_STATE_ARGS,
        color=dict(type='str', required=True, choices=['blue', 'green']),
        containers=dict(type='dict', required=True),
        stamp=dict(type='list', elements='str', default=['qa']),
        secrets=dict(type='dict', default={}, no_log=True),
        kb=dict(type='dict', default={}),
        extra=dict(type='dict', default={}),
        compare_to=dict(type='str'),
        host_digests=dict(type='list', elements='dict'),
        shipped=dict(type='list', elements='path', default=[]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        run(module)
    except (SpecError, NamesError) as exc:
        module.fail_json(msg=str(exc))
    except DockerException as exc:
        module.fail_json(msg='cannot reach the Docker engine: %s' % exc)
    except (IOError, OSError, StateError) as exc:
        module.fail_json(msg='cannot write the spec under %s: %s'
                         % (names(module.params['service'], module.params['state_dir'])['specs_dir'], exc))


if __name__ == '__main__':
    main()
