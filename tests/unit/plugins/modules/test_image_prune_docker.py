# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_prune on the real engine: tiny real images (FROM the base image), kept vs removed.

Tags live under a repository of the test's own ($LLMOPS_TEST_PREFIX-llmops-<random>), so no
other image on the engine is ever a candidate.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import json
import os
import time
import uuid

import pytest

from _docker_fixtures import docker_client_with
from ansible_collections.llmops.bluegreen.plugins.modules import image_prune

BASE = os.environ.get('LLMOPS_BASE_IMAGE', 'llmops/base:bookworm')
PREFIX = os.environ.get('LLMOPS_TEST_PREFIX', 'rrk')
pytestmark = pytest.mark.docker


@pytest.fixture
def client():
    return docker_client_with(BASE, 'make host builds it')


@pytest.fixture
def builds(client):
    """Four builds of <repo>/probe, oldest first (one second apart: the engine's Created has seconds)."""
    repo = '%s-llmops-%s' % (PREFIX, uuid.uuid4().hex[:6])
    made, containers = [], []
    for n in range(4):
        dockerfile = 'FROM %s\nLABEL io.llmops.test=%s build=%d\n' % (BASE, repo, n)
        tag = '%s/probe:0.1.0-%012x' % (repo, n)
        image, _logs = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, pull=False)
        made.append((tag, image.id))
        time.sleep(1.1)
    yield repo, made, containers
    for container in containers:
        container.remove(force=True)
    for image in client.api.images():
        for tag in image.get('RepoTags') or ():
            if tag.startswith(repo + '/'):
                client.api.remove_image(tag, force=True)


def state_dir_with_spec(tmp_path, service, image_tag, image_id):
    """A service whose blue color's spec names one image (a color a rollback goes back to)."""
    release = 'f' * 64
    base = tmp_path / service
    (base / 'specs').mkdir(parents=True)
    (base / 'specs' / ('%s.json' % release)).write_text(json.dumps(
        {'containers': {'qa': {'image': image_tag, 'image_id': image_id}}}))
    (base / 'state.json').write_text(json.dumps({'schema': 1, 'service': service, 'active': 'blue',
                                                 'colors': {'blue': {'release': release}}}))
    return str(tmp_path)


def tags_of(client, repo):
    return sorted(tag for image in client.api.images() for tag in image.get('RepoTags') or ()
                  if tag.startswith(repo + '/'))


def test_old_builds_go_used_and_named_stay(client, builds, tmp_path, run_module):
    repo, made, containers = builds
    (oldest, oldest_id), (spec_tag, spec_id), (old_tag, _old_id), (newest, _newest_id) = made
    # A stopped container of the oldest build, and a second, non-build tag on it.
    containers.append(client.containers.create(oldest_id, ['true'], name='%s-user-%s' % (PREFIX, uuid.uuid4().hex[:6])))
    client.api.tag(oldest_id, repo + '/probe', 'pinned')
    state_dir = state_dir_with_spec(tmp_path, 'rrksvc', spec_tag, spec_id)
    args = dict(repository=repo, keep=1, service='rrksvc', state_dir=state_dir)
    failed, result = run_module(image_prune, args, check_mode=True, diff=True)
    assert not failed and result['changed']
    assert [b['tags'] for b in result['removed']] == [[old_tag]]
    assert old_tag in tags_of(client, repo)  # check mode removed nothing
    assert old_tag in result['diff']['before'] and old_tag not in result['diff']['after']

    failed, result = run_module(image_prune, args)
    assert not failed and result['changed'], result
    why = dict((b['tags'][0], b['why']) for b in result['kept'])
    assert why == {newest: 'one of the 1 newest', spec_tag: 'protected (a color spec or the current build)',
                   oldest: 'a container uses it'}
    assert tags_of(client, repo) == sorted([newest, spec_tag, oldest, repo + '/probe:pinned'])

    failed, again = run_module(image_prune, args)
    assert not failed and not again['changed'] and again['removed'] == []

    # Once its container is gone the oldest build loses its build tag; its other tag keeps the image.
    containers.pop().remove(force=True)
    failed, result = run_module(image_prune, args)
    assert not failed and [b['tags'] for b in result['removed']] == [[oldest]]
    assert tags_of(client, repo) == sorted([newest, spec_tag, repo + '/probe:pinned'])
    assert client.images.get(repo + '/probe:pinned').id == oldest_id


def test_a_missing_spec_fails_and_removes_nothing(client, builds, tmp_path, run_module):
    repo, made, _containers = builds
    state_dir = state_dir_with_spec(tmp_path, 'rrksvc', made[1][0], made[1][1])
    os.remove(os.path.join(state_dir, 'rrksvc', 'specs', 'f' * 64 + '.json'))
    failed, result = run_module(image_prune, dict(repository=repo, keep=1, service='rrksvc', state_dir=state_dir))
    assert failed and 'its spec is missing' in result['msg']
    assert len(tags_of(client, repo)) == 4


def test_the_roles_prune_tasks_remove_once_then_change_nothing(client, builds, tmp_path):
    """roles/images/tasks/prune.yml through ansible-playbook: off by default, then changed, then changed=0."""
    import subprocess
    import sys
    repo, made, _containers = builds
    repo_root = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
    playbook = tmp_path / 'prune.yml'
    playbook.write_text('- hosts: localhost\n  gather_facts: false\n  tasks:\n'
                        '    - ansible.builtin.include_role:\n        name: llmops.bluegreen.images\n'
                        '        tasks_from: prune.yml\n')

    def run(*extra):
        proc = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
             str(playbook), '-e', 'images_repository=%s images_prune_keep=2 images_prune_state_dir=%s'
             % (repo, tmp_path / 'state'), '-e', 'ansible_python_interpreter=%s' % sys.executable] + list(extra),
            cwd=repo_root, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(repo_root, 'ansible.cfg')),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
        out = proc.stdout.decode('utf-8', 'replace')
        assert proc.returncode == 0, out[-3000:]
        return out

    assert 'changed=0' in run() and len(tags_of(client, repo)) == 4  # images_prune_enabled defaults to false
    assert 'changed=1' in run('-e', 'images_prune_enabled=true')
    assert tags_of(client, repo) == sorted(tag for tag, _image_id in made[2:])
    assert 'changed=0' in run('-e', 'images_prune_enabled=true')
