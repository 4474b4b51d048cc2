#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: color_digests
short_description: Digest what a color's containers use on the host that runs them
version_added: 0.3.0
description:
  - Run on each host of a color (C(delegate_to)) before llmops.bluegreen.color_spec on the gateway host, so the
    release fingerprint hashes the image IDs and the mounted model files of the hosts where the color runs, not
    those of the gateway host.
  - Reports, for the given container definitions, each image's ID on this Docker host (null when the image is
    not here), the content digest of each bind-mounted host path (null when the path does not exist here), and
    what each container runs now (its C(llmops.release) label).
  - Files under the service's C(secrets) directory are skipped (color_spec takes keyed digests of their desired
    content). Digests are cached on this host under O(state_dir)/O(service), so a large model is read only when
    its size, mtime or inode changes.
  - Never fails for a missing image or path; llmops.bluegreen.color_spec decides, naming the host.
author:
  - llmops.bluegreen developers (@llmops)
requirements:
  - Docker SDK for Python (C(docker)) on the host.
extends_documentation_fragment:
  - llmops.bluegreen.attributes
  - llmops.bluegreen.attributes.service_state
attributes:
  check_mode:
    support: full
    details:
      - Reports the same digests; does not write the digest cache.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  host:
    description:
      - The inventory name of this host, returned as RV(host) so color_spec names it in its messages.
    type: str
    required: true
  containers:
    description:
      - Container definitions by role, as given to llmops.bluegreen.color_spec; a null value means no container.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Digest what green uses on its hosts
  llmops.bluegreen.color_digests:
    host: "{{ item }}"
    containers:
      qa: "{{ qa_service_defined }}"
      llm: "{{ inference_defined.definition }}"
  delegate_to: "{{ item }}"
  loop: "{{ green_hosts }}"
  register: green_digests
"""

RETURN = r"""
host:
  description: O(host).
  returned: success
  type: str
image_ids:
  description: Each image of the definitions and its ID on this host; null when the image is not here.
  returned: success
  type: dict
  sample: {"llmops/qa-api:0.1.0": "sha256:9f2c..."}
mounts:
  description: Each bind-mounted host path and its content digest here; null when the path does not exist here.
  returned: success
  type: dict
  sample: {"/srv/models/qwen": "tree:5be1..."}
observed:
  description: 'What each container runs now: C(exists), C(running), C(release) (its label), C(image_id).'
  returned: success
  type: dict
hashed_bytes:
  description: Bytes read to compute digests (0 when every file was in the digest cache).
  returned: success
  type: int
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import DOCKER_IMPORT_ERROR, HAS_DOCKER
from ansible_collections.llmops.bluegreen.plugins.module_utils._names import NamesError, names
from ansible_collections.llmops.bluegreen.plugins.module_utils._spec import SpecError, check_definition
from ansible_collections.llmops.bluegreen.plugins.module_utils._spec_host import (
    HostDigests,
    image_ids,
    mounted_sources,
    observe,
)
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import SERVICE_STATE_ARGS, StateError

if HAS_DOCKER:
    import docker
    from docker.errors import DockerException


def run(module):
    params = module.params
    paths = names(params['service'], params['state_dir'])
    containers = params['containers']
    for role, definition in containers.items():
        if definition is not None:
            check_definition(role, definition)
    present = [d for d in containers.values() if d is not None]
    digests = HostDigests(paths['model_digests'])
    mounts = dict((source, digests.digest(source, missing_ok=True))
                  for source in mounted_sources(present, paths['secrets_dir']))
    client = docker.from_env()
    result = dict(changed=False, host=params['host'], image_ids=image_ids(client, present), mounts=mounts,
                  observed=observe(client, containers), hashed_bytes=digests.hashed)
    if not module.check_mode:
        digests.save()
    module.exit_json(**result)


def main():
    argument_spec = dict(
        SERVICE_STATE_ARGS,
        host=dict(type='str', required=True),
        containers=dict(type='dict', required=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib('docker'), exception=DOCKER_IMPORT_ERROR)
    try:
        run(module)
    except (SpecError, NamesError) as exc:
        module.fail_json(msg=str(exc))
    except DockerException as exc:
        module.fail_json(msg='cannot reach the Docker engine: %s' % exc)
    except (IOError, OSError, StateError) as exc:
        module.fail_json(msg='cannot write the digest cache under %s: %s'
                         % (names(module.params['service'], module.params['state_dir'])['dir'], exc))


if __name__ == '__main__':
    main()
