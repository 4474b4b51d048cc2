# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The builder's containers for real: confined as docker inspect shows, and a zip bomb added to the
documents of an existing knowledge base fails fast while the existing version stays byte for byte.

Image: $LLMOPS_QA_API_IMAGE (the qa-api image of this checkout).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import time
import uuid

import pytest

from _docker_fixtures import docker_client_with
from _kb_documents import write_zip_bomb_docx
from ansible_collections.llmops.bluegreen.plugins.module_utils import _kb_container
from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import fingerprint
from ansible_collections.llmops.bluegreen.plugins.modules import kb_build

pytestmark = pytest.mark.docker

IMAGE = os.environ.get('LLMOPS_QA_API_IMAGE', 'llmops/qa-api:dev')
PROBE = (
    "import json, os\n"
    "try:\n"
    "    open('/etc/kbsafe-probe', 'w'); root_writable = True\n"
    "except OSError:\n"
    "    root_writable = False\n"
    "open('/tmp/probe', 'w').write('x')\n"
    "from qa_api.kb.onnx_model import default_threads\n"
    "print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(), 'root_writable': root_writable,\n"
    "                  'interfaces': sorted(os.listdir('/sys/class/net')), 'threads': default_threads()}))\n")


@pytest.fixture(scope='module')
def client():
    return docker_client_with(IMAGE, 'build images/qa-api or set LLMOPS_QA_API_IMAGE')


def test_builder_container_is_confined_as_docker_inspect_shows(client):
    name = 'kbsafe-inspect-%s' % uuid.uuid4().hex[:6]
    try:
        code, stdout, stderr = _kb_container.run_container(
            client, IMAGE, ['python', '-c', PROBE], name, {}, {'llmops.test': 'kbsafe'}, 120,
            memory='512m', pids_limit=64, keep=True, cpus=0.5)
        assert code == 0, stderr
        inside = json.loads(stdout.strip().splitlines()[-1])
        attrs = client.api.inspect_container(name)
    finally:
        client.api.remove_container(name, force=True)
    host = attrs['HostConfig']
    assert attrs['Config']['User'] == ('10001:10001' if os.getuid() == 0 else '%d:%d' % (os.getuid(), os.getgid()))
    assert host['Memory'] == 512 * 1024 * 1024 and host['MemorySwap'] == 512 * 1024 * 1024
    assert host['PidsLimit'] == 64
    assert host['NanoCpus'] == 500000000
    assert host['NetworkMode'] == 'none'
    assert host['CapDrop'] == ['ALL'] and not host.get('CapAdd')
    assert host['SecurityOpt'] == ['no-new-privileges:true']
    assert host['ReadonlyRootfs'] is True and '/tmp' in host['Tmpfs']
    assert host['Privileged'] is False
    # What the process sees: not root, root filesystem read-only, /tmp writable, only loopback.
    assert inside['uid'] != 0 and inside['gid'] != 0
    assert inside['root_writable'] is False
    assert inside['interfaces'] == ['lo']
    # The embedding threads follow the quota, not the host's CPUs.
    assert inside['threads'] == 1


def test_zip_bomb_fails_fast_and_the_existing_version_is_untouched(client, run_module, tmp_path):
    docs = tmp_path / 'docs'
    docs.mkdir()
    (docs / 'leave.md').write_text('# Leave\n\nAnnual leave is 25 days per year.\n')
    args = {'docs': str(docs), 'kb_root': str(tmp_path / 'kb'), 'name': 'kbsafe', 'builder_image': IMAGE,
            'timeout': 600}
    failed, first = run_module(kb_build, args)
    assert not failed, first['msg']
    version_dir = first['path']
    before = fingerprint(version_dir, exclude_manifest=False)
    # Built by the non-root builder, handed back to the module's user before sealing.
    assert all(os.stat(os.path.join(version_dir, name)).st_uid == os.getuid() for name in os.listdir(version_dir))

    write_zip_bomb_docx(docs / 'report.docx')
    started = time.monotonic()
    failed, result = run_module(kb_build, args)
    elapsed = time.monotonic() - started
    assert failed and result['file'] == 'report.docx'
    assert 'report.docx: zip container expands to' in result['msg']
    assert 'max_unzipped_bytes=268435456' in result['msg'] and 'knowledge_base_max_unzipped_bytes' in result['msg']
    assert elapsed < 30, elapsed  # refused from the zip directory: no container parsed it
    name_dir = os.path.dirname(version_dir)
    assert sorted(os.listdir(name_dir)) == ['.cache', first['version']]
    assert fingerprint(version_dir, exclude_manifest=False) == before
    leftovers = client.containers.list(all=True, filters={'label': 'llmops.kb.name=kbsafe'})
    assert leftovers == []


def test_a_builder_over_its_memory_limit_is_killed_alone_and_named(client):
    name = 'kbsafe-oom-%s' % uuid.uuid4().hex[:6]
    with pytest.raises(_kb_container.BuilderError) as failure:
        _kb_container.run_container(client, IMAGE, ['python', '-c', 'x = bytearray(400 * 1024 * 1024)'], name, {},
                                    {'llmops.test': 'kbsafe'}, 120, memory='64m', pids_limit=32)
    message = str(failure.value)
    assert 'killed for using more than its memory limit 64m' in message
    assert 'knowledge_base_builder_memory' in message
    assert client.containers.list(all=True, filters={'name': name}) == []


def test_a_build_under_a_cpu_quota_and_another_batch_size_is_the_same_version(client, run_module, tmp_path):
    docs = tmp_path / 'docs'
    docs.mkdir()
    (docs / 'leave.md').write_text('# Leave\n\nAnnual leave is 25 days per year.\n\nCarry over at most 5 days.\n')
    (docs / 'vpn.txt').write_text('The VPN uses WireGuard on UDP port 51820.\n')
    built = {}
    for label, extra in (('default', {}), ('confined', {'builder_cpus': 1.0, 'embedding_batch_size': 1})):
        args = {'docs': str(docs), 'kb_root': str(tmp_path / label), 'name': 'kbcpu', 'builder_image': IMAGE,
                'timeout': 600}
        args.update(extra)
        failed, result = run_module(kb_build, args)
        assert not failed, result['msg']
        built[label] = result
    # The quota and the batch size change how the vectors are computed, not what is built.
    assert built['confined']['version'] == built['default']['version']
    assert built['confined']['embedded'] == built['default']['embedded'] == built['default']['chunk_count']
    chunks = [open(os.path.join(built[label]['path'], 'chunks.jsonl'), 'rb').read() for label in built]
    assert chunks[0] == chunks[1]
