# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""color_spec against a real Docker engine: image IDs, mounted content, secrets, what runs."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import stat
import uuid

import pytest

from _docker_fixtures import docker_client_with
from ansible_collections.llmops.bluegreen.plugins.modules import color_digests, color_spec

BASE = os.environ.get('LLMOPS_BASE_IMAGE', 'llmops/base:bookworm')
pytestmark = pytest.mark.docker


@pytest.fixture
def client():
    return docker_client_with(BASE, 'make host builds it')


def definitions(color, model, threads='2', image=BASE):
    return {
        'qa': {'name': 'spec-qa-%s' % color, 'image': image, 'env': {'QA_COLOR': color},
               'labels': {'llmops.color': color}},
        'llm': {'name': 'spec-llm-%s' % color, 'image': image, 'env': {'LLM_THREADS': threads},
                'mounts': [{'type': 'bind', 'source': model, 'target': '/models/model.gguf', 'read_only': True}]},
    }


def spec(run_module, tmp_path, color, model, check_mode=False, **kwargs):
    args = dict(service='spec', state_dir=str(tmp_path / 'state'), color=color,
                containers=definitions(color, model, **kwargs), secrets={'redis_password': 'hunter2-hunter2'})
    return run_module(color_spec, args, check_mode=check_mode)


def test_fingerprint_follows_what_would_run(client, run_module, tmp_path):
    model = tmp_path / 'model.gguf'
    model.write_bytes(b'GGUF' + os.urandom(64))
    failed, blue = spec(run_module, tmp_path, 'blue', str(model))
    assert not failed, blue
    failed, green = spec(run_module, tmp_path, 'green', str(model))
    assert green['fingerprint'] == blue['fingerprint'], 'the same release must fingerprint alike on both colors'
    assert green['spec']['containers']['qa']['image_id'] == client.images.get(BASE).id
    # Model content under the same path: a new release.
    model.write_bytes(b'GGUF' + os.urandom(64))
    failed, changed = spec(run_module, tmp_path, 'green', str(model))
    assert changed['fingerprint'] != blue['fingerprint']
    failed, threads = spec(run_module, tmp_path, 'green', str(model), threads='4')
    assert threads['fingerprint'] not in (blue['fingerprint'], changed['fingerprint'])
    # The qa-api is stamped with its release; the inference server is not (reused across KB releases).
    qa = changed['definitions']['qa']
    assert qa['labels']['llmops.release'] == changed['fingerprint'] == qa['env']['QA_RELEASE']
    assert 'llmops.release' not in (changed['definitions']['llm'].get('labels') or {})
    # The spec is kept for later comparison, readable by root only; no secret in it.
    path = tmp_path / 'state' / 'spec' / 'specs' / ('%s.json' % changed['fingerprint'])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert 'hunter2' not in path.read_text()
    assert json.loads(path.read_text())['secrets']['redis_password'].startswith('hmac-sha256:')


def test_compare_to_names_what_changed_and_check_mode_writes_nothing(client, run_module, tmp_path):
    model = tmp_path / 'model.gguf'
    model.write_bytes(b'GGUF-1')
    failed, first = spec(run_module, tmp_path, 'blue', str(model))
    args = dict(service='spec', state_dir=str(tmp_path / 'state'), color='green',
                containers=definitions('green', str(model), threads='8'), compare_to=first['fingerprint'])
    failed, second = run_module(color_spec, args, check_mode=True)
    assert not failed, second
    assert 'containers.llm.env.LLM_THREADS' in second['changes']
    assert 'secrets.redis_password' in second['changes']
    assert not (tmp_path / 'state' / 'spec' / 'specs' / ('%s.json' % second['fingerprint'])).exists()


def test_secret_change_changes_the_fingerprint(client, run_module, tmp_path):
    model = tmp_path / 'm'
    model.write_bytes(b'x')
    base = dict(service='spec', state_dir=str(tmp_path / 'state'), color='blue',
                containers=definitions('blue', str(model)))
    one = run_module(color_spec, dict(base, secrets={'redis_password': 'a' * 32}))[1]
    two = run_module(color_spec, dict(base, secrets={'redis_password': 'b' * 32}))[1]
    assert one['fingerprint'] != two['fingerprint']


def test_bad_inputs_name_the_problem(client, run_module, tmp_path):
    base = dict(service='spec', state_dir=str(tmp_path / 'state'), color='blue')
    failed, result = run_module(color_spec, dict(base, containers=definitions('blue', str(tmp_path / 'absent'))))
    assert failed and str(tmp_path / 'absent') in result['msg']
    model = tmp_path / 'm'
    model.write_bytes(b'x')
    missing = 'llmops/none:%s' % uuid.uuid4().hex[:8]
    failed, result = run_module(color_spec, dict(base, containers=definitions('blue', str(model), image=missing)))
    assert failed and missing in result['msg'] and 'build it' in result['msg']
    failed, result = run_module(color_spec, dict(base, containers={'qa': {'name': 'x', 'image': BASE, 'volumes': []}}))
    assert failed and 'volumes' in result['msg']


def test_observed_reports_the_release_label_of_the_running_container(client, run_module, tmp_path):
    model = tmp_path / 'm'
    model.write_bytes(b'x')
    name = 'spec-qa-blue'
    args = dict(service='spec', state_dir=str(tmp_path / 'state'), color='blue',
                containers=definitions('blue', str(model)))
    fingerprint = run_module(color_spec, args)[1]['fingerprint']
    try:
        client.containers.run(BASE, ['sleep', '60'], name=name, detach=True,
                              labels={'llmops.release': fingerprint})
        observed = run_module(color_spec, args)[1]['observed']
        assert observed['qa'] == dict(observed['qa'], exists=True, running=True, release=fingerprint)
        assert observed['llm']['exists'] is False
    finally:
        try:
            client.containers.get(name).remove(force=True)
        except Exception:  # pylint: disable=broad-except
            pass


def report(result):
    """What a registered color_digests result carries that color_spec reads."""
    return dict((key, result[key]) for key in ('host', 'image_ids', 'mounts', 'observed'))


def test_a_fleet_spec_hashes_the_color_hosts_reports_and_ships_the_kb_from_here(client, run_module, tmp_path):
    """color_digests on the color's host (here: the same engine under two host names), then color_spec
    with its reports: the fingerprint of one host is the local one; the gateway's files are not read."""
    model = tmp_path / 'model.gguf'
    model.write_bytes(b'GGUF' + os.urandom(64))
    kb = tmp_path / 'kb-v1'
    kb.mkdir()
    (kb / 'index.faiss').write_bytes(b'faiss')
    containers = definitions('green', str(model))
    containers['qa']['mounts'] = [{'type': 'bind', 'source': str(kb), 'target': '/kb', 'read_only': True}]
    state = dict(service='spec', state_dir=str(tmp_path / 'state'))
    failed, local = run_module(color_spec, dict(state, color='green', containers=containers))
    assert not failed, local
    failed, gpu_a = run_module(color_digests, dict(state, host='gpu-a', containers=containers))
    assert not failed, gpu_a
    assert gpu_a['image_ids'] == {BASE: client.images.get(BASE).id}
    assert gpu_a['mounts'][str(model)].startswith('sha256:')
    fleet = dict(state, color='green', containers=containers, host_digests=[report(gpu_a)], shipped=[str(kb)])
    failed, merged = run_module(color_spec, fleet)
    assert not failed, merged
    assert merged['fingerprint'] == local['fingerprint']
    # A host without the model: refused, naming it; the KB it would receive is not required there.
    elsewhere = dict(containers, llm=dict(containers['llm'], mounts=[dict(containers['llm']['mounts'][0],
                                                                          source=str(tmp_path / 'absent'))]))
    failed, gpu_b = run_module(color_digests, dict(state, host='gpu-b', containers=elsewhere))
    assert not failed and gpu_b['mounts'][str(tmp_path / 'absent')] is None
    failed, result = run_module(color_spec, dict(fleet, containers=elsewhere, host_digests=[report(gpu_b)]))
    assert failed and 'does not exist on gpu-b' in result['msg'], result
