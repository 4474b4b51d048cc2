#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: image_prune
short_description: Remove old builds of the collection's images, never one a color or a rollback needs
version_added: 0.3.0
description:
  - Every source change of an image gives a new tag C(<repository>/<name>:<version>-<12 hex>) (role
    C(llmops.bluegreen.images)); without pruning the old builds pile up (the qa-api image is over 1.5 GB).
  - Only such build tags are candidates; the base image, tags of other forms and other repositories are never
    touched. A build stays when it is one of the O(keep) newest of its name (by creation time), or a container
    (running or stopped) uses it, or the spec of a color recorded in C(state.json) names it (that color serves, or
    a rollback goes back to it), or O(protect) names it.
  - The others lose their build tags; the engine deletes an image with its last tag. An image with other tags
    keeps them. Nothing is forced - an image a container started meanwhile is refused by the engine and stays.
author:
  - llmops.bluegreen developers (@llmops)
extends_documentation_fragment:
  - llmops.bluegreen.attributes
  - llmops.bluegreen.attributes.service_state
attributes:
  check_mode:
    support: full
    details:
      - Check mode reports what would be removed and removes nothing.
  diff_mode:
    support: full
    details:
      - The build tags before and after.
  idempotent:
    support: full
options:
  repository:
    description:
      - Repository prefix of the collection's images (role variable C(images_repository)).
    type: str
    default: llmops
  names:
    description:
      - Image names under O(repository) to prune (C(qa-api), C(gateway), ...). Empty means every name.
    type: list
    elements: str
    default: []
  keep:
    description:
      - How many of the newest builds of each name stay, whether in use or not (at least 1).
    type: int
    default: 2
  protect:
    description:
      - Image references or IDs that stay whatever their age (the images just built).
    type: list
    elements: str
    default: []
requirements:
  - Docker SDK for Python (C(docker)) on the docker host.
seealso:
  - module: llmops.bluegreen.kb_prune
"""

EXAMPLES = r"""
- name: Keep the 2 newest builds of each image, and every one a color or a container uses
  llmops.bluegreen.image_prune:
    service: qa
    keep: 2
    names: [qa-api, llm-llamacpp, gateway, redis]
    protect: "{{ images_tags.values() | list }}"
"""

RETURN = r"""
kept:
  description: The builds that stay, newest first per name, each with C(name), C(id), C(tags), C(created) and C(why).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "qa-api", "id": "sha256:1ca0...", "tags": ["llmops/qa-api:0.1.0-87e79fe23199"],
            "created": 1796270000, "why": "a container uses it"}]
removed:
  description: The builds whose tags were removed (in check mode, would be), same keys.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "qa-api", "id": "sha256:e3f2...", "tags": ["llmops/qa-api:0.1.0-6c37d887d036"],
            "created": 1796260000, "why": "older than the 2 newest"}]
refused:
  description: Tags the engine refused to remove (a container started using it meanwhile), with its message.
  returned: always
  type: list
  elements: dict
  sample: []
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmops.bluegreen.plugins.module_utils._image_retention import (
    RetentionError, listing, plan, read_spec_file, spec_images)
from ansible_collections.llmops.bluegreen.plugins.module_utils._names import names as service_names
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import SERVICE_STATE_ARGS, StateError, read_state

try:
    import docker
    from docker.errors import APIError, DockerException
    DOCKER_IMPORT_ERROR = None
except ImportError:
    DOCKER_IMPORT_ERROR = traceback.format_exc()


def engine_view(client):
    """``(images, in_use)`` from the engine: every image with tags, the image IDs of all containers."""
    images = [dict(id=image['Id'], tags=[tag for tag in image.get('RepoTags') or () if tag != '<none>:<none>'],
                   created=int(image.get('Created') or 0)) for image in client.api.images()]
    in_use = set(container['ImageID'] for container in client.api.containers(all=True) if container.get('ImageID'))
    return images, in_use


def remove(client, removed):
    """Untag each removed build; the engine's refusals (a container appeared) are returned, not raised."""
    refused = []
    for build in removed:
        for tag in build['tags']:
            try:
                client.api.remove_image(tag, force=False, noprune=False)
            except APIError as exc:
                if exc.status_code == 404:
                    continue  # gone already (another prune): the wanted end state
                if exc.status_code != 409:
                    raise
                refused.append(dict(tag=tag, id=build['id'], msg=str(exc.explanation or exc)))
    return refused


def main():
    argument_spec = dict(
        repository=dict(type='str', default='llmops'),
        names=dict(type='list', elements='str', default=[]),
        keep=dict(type='int', default=2),
        protect=dict(type='list', elements='str', default=[]),
    )
    argument_spec.update(SERVICE_STATE_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if DOCKER_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib('docker'), exception=DOCKER_IMPORT_ERROR)
    params = module.params
    try:
        paths = service_names(params['service'], params['state_dir'])
        protect = set(params['protect']) | spec_images(read_state(paths['state']), read_spec_file(paths['specs_dir']))
        client = docker.from_env()
        images, in_use = engine_view(client)
        kept, removed = plan(images, params['keep'], in_use, protect, params['repository'], params['names'])
        refused = [] if module.check_mode else remove(client, removed)
    except (RetentionError, StateError, ValueError) as exc:
        module.fail_json(msg='image_prune: %s' % exc)
    except (DockerException, APIError) as exc:
        module.fail_json(msg='image_prune: the Docker engine failed: %s; start dockerd (or fix its socket access)'
                         % exc)
    except (IOError, OSError) as exc:
        module.fail_json(msg='image_prune: cannot read the state of service %s under %s: %s; fix its owner or mode'
                         % (params['service'], params['state_dir'], exc))
    refused_tags = set(item['tag'] for item in refused)
    gone = [build for build in removed if not refused_tags.intersection(build['tags'])]
    result = dict(changed=bool(gone), kept=kept, removed=removed, refused=refused)
    for item in refused:
        module.warn('the engine kept %s: %s' % (item['tag'], item['msg']))
    if module._diff:
        still = [b for b in removed if b not in gone]
        result['diff'] = {'before': listing(kept + removed), 'after': listing(kept + still),
                          'before_header': 'images under %s/' % params['repository'],
                          'after_header': 'images under %s/' % params['repository']}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
