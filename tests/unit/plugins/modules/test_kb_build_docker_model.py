# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kb_build for real with a host embedding model directory and with another builder.

The model is the one bundled in the qa-api image ($LLMOPS_QA_API_IMAGE), copied out of it to a
host directory; "a new model under the same name" is that copy with a newline appended to its
config.json (it still loads). "Another builder" is the image with one comment added to the
splitter's source. Every build runs the real builder CLI in a container.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import os
import shutil
import tarfile
import uuid

import pytest

from _docker_fixtures import docker_client_with
from ansible_collections.llmops.bluegreen.plugins.module_utils import _kb_builder
from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import fingerprint
from ansible_collections.llmops.bluegreen.plugins.modules import kb_build

pytestmark = pytest.mark.docker

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'examples', 'docs')
IMAGE = os.environ.get('LLMOPS_QA_API_IMAGE', 'llmops/qa-api:dev')
PREFIX = os.environ.get('LLMOPS_TEST_PREFIX', 'h4-ut')


def tree_state(path):
    """Fingerprint plus every file's mtime: equal only if nothing was rewritten."""
    mtimes = {}
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            mtimes[os.path.relpath(full, path)] = os.stat(full).st_mtime_ns
    return fingerprint(path, exclude_manifest=False), mtimes


def copy_model_out_of(client, image, dest):
    container = client.containers.create(image, command=['true'])
    try:
        stream, _stat = container.get_archive(_kb_builder.DEFAULT_EMBEDDING_MODEL)
        with tarfile.open(fileobj=io.BytesIO(b''.join(stream))) as tar:
            tar.extractall(dest, filter='data')
    finally:
        container.remove(force=True)
    return os.path.join(dest, 'model')


def derived_image(client, base, tag, run):
    """``base`` with one shell command run as root (the files of /app belong to root)."""
    dockerfile = 'FROM %s\nUSER root\nRUN %s\nUSER qa\n' % (base, run)
    client.images.build(fileobj=io.BytesIO(dockerfile.encode('utf-8')), tag=tag, rm=True, pull=False)
    return tag


@pytest.fixture(scope='module')
def env(run_module, tmp_path_factory):
    client = docker_client_with(IMAGE, 'build images/qa-api or set LLMOPS_QA_API_IMAGE')
    base = tmp_path_factory.mktemp('kb-model')
    docs = str(base / 'docs')
    shutil.copytree(EXAMPLES, docs)
    model = copy_model_out_of(client, IMAGE, str(base / 'models'))
    args = {'docs': docs, 'kb_root': str(base / 'kb'), 'name': 'handbook', 'builder_image': IMAGE, 'timeout': 900}
    failed, in_image = run_module(kb_build, args)
    assert not failed, in_image['msg']
    tags = []
    yield {'client': client, 'args': args, 'model': model, 'in_image': in_image, 'tags': tags, 'versions': {}}
    for tag in tags:
        try:
            client.images.remove(tag, force=True)
        except Exception:  # pylint: disable=broad-except
            pass


def test_same_model_bytes_from_the_host_is_the_same_version(env, run_module):
    args = dict(env['args'], embedding_model_dir=env['model'])
    failed, result = run_module(kb_build, args)
    assert not failed, result['msg']
    # Content-addressed: the bundled model's bytes, mounted from the host, need no rebuild.
    assert result['changed'] is False and result['version'] == env['in_image']['version']
    assert result['embedding'] == {'name': 'all-MiniLM-L6-v2', 'path': '/models/embedding',
                                   'host_dir': env['model'], 'digest': env['in_image']['identity']['embedding_digest']}


def test_new_model_under_the_same_name_builds_a_new_version(env, run_module):
    old = env['in_image']
    before = tree_state(old['path'])
    with open(os.path.join(env['model'], 'config.json'), 'a') as handle:
        handle.write('\n')
    args = dict(env['args'], embedding_model_dir=env['model'])
    failed, predicted = run_module(kb_build, args, check_mode=True)
    assert not failed and predicted['changed'] is True
    failed, result = run_module(kb_build, args, diff=True)
    assert not failed, result['msg']
    assert result['changed'] is True and result['built'] is True
    assert result['version'] == predicted['version'] != old['version']
    assert result['identity']['builder_digest'] == old['identity']['builder_digest']
    digest = fingerprint(env['model'])[0]
    assert result['embedding']['digest'] == result['manifest']['embedding']['digest'] == digest
    assert digest != old['manifest']['embedding']['digest']
    assert result['manifest']['embedding']['name'] == old['manifest']['embedding']['name']
    # Another model's vectors are never reused from the cache, even under the same name.
    assert result['cached'] == 0 and result['embedded'] == old['embedded']
    assert tree_state(old['path']) == before
    env['versions']['edited'] = result

    failed, again = run_module(kb_build, args)
    assert not failed, again['msg']
    assert again['changed'] is False and again['built'] is False and again['version'] == result['version']


def test_another_builder_builds_a_new_version(env, run_module):
    edited = env['versions'].get('edited')
    if edited is None:
        pytest.skip('needs test_new_model_under_the_same_name_builds_a_new_version')
    tag = '%s-kb-builder:%s' % (PREFIX, uuid.uuid4().hex[:8])
    env['tags'].append(tag)
    derived_image(env['client'], IMAGE, tag, "echo '# a fixed splitter' >> /app/qa_api/kb/splitter.py")
    before = tree_state(edited['path'])
    args = dict(env['args'], embedding_model_dir=env['model'], builder_image=tag)
    failed, result = run_module(kb_build, args)
    assert not failed, result['msg']
    assert result['changed'] is True and result['version'] != edited['version']
    assert result['identity']['builder_digest'] != edited['identity']['builder_digest']
    assert result['manifest']['builder']['digest'] == result['identity']['builder_digest']
    assert result['identity']['embedding_digest'] == edited['identity']['embedding_digest']
    # Same model and embedding code: the vectors come from the cache.
    assert result['embedded'] == 0 and result['cached'] == result['chunk_count']
    assert tree_state(edited['path']) == before


def test_stale_identity_is_refused_and_nothing_is_kept(env, run_module):
    # Versioned with the bundled model's digest, but the builder embeds with the edited host model.
    args = dict(env['args'], embedding_model_dir=env['model'], identity=env['in_image']['identity'], chunk_size=500)
    name_dir = os.path.join(env['args']['kb_root'], 'handbook')
    listing = sorted(os.listdir(name_dir))
    failed, result = run_module(kb_build, args)
    assert failed and result['changed'] is False
    assert 'embedding model digest %s, the version was computed with %s' % (
        fingerprint(env['model'])[0], env['in_image']['identity']['embedding_digest']) in result['msg']
    assert sorted(os.listdir(name_dir)) == listing
    failed, unchanged = run_module(kb_build, dict(env['args']))
    assert not failed and unchanged['changed'] is False


def test_image_without_identity_cli_is_refused_naming_the_fix(env, run_module):
    tag = '%s-kb-old:%s' % (PREFIX, uuid.uuid4().hex[:8])
    env['tags'].append(tag)
    derived_image(env['client'], IMAGE, tag, 'rm -rf /app/qa_api/kb/identity.py /app/qa_api/kb/__pycache__')
    failed, result = run_module(kb_build, dict(env['args'], builder_image=tag))
    assert failed
    assert '%s has no qa_api.kb.identity' % tag in result['msg'] and 'llmops.bluegreen.images' in result['msg']
    assert 'version' not in result
