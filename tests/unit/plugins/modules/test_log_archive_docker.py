# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""log_archive on a real container: encrypted archives hold exactly the new lines, never in clear."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gzip
import json
import os
import stat
import subprocess
import time
import uuid
import zlib

import pytest

from _docker_fixtures import docker_client_with
from ansible_collections.llmops.bluegreen.plugins.module_utils import _log_crypto
from ansible_collections.llmops.bluegreen.plugins.modules import log_archive

BASE = os.environ.get('LLMOPS_BASE_IMAGE', 'llmops/base:bookworm')
pytestmark = pytest.mark.docker
MARKER = 'LOGARC-SECRET-%s' % uuid.uuid4().hex[:10]
# Three stdout lines and one stderr line; after /tmp/go appears, two more; all bounded in time.
SCRIPT = r'''
for i in 0 1 2; do echo "first-$i patient=%(m)s"; done
echo "first-err %(m)s" >&2
n=0; while [ ! -e /tmp/go ] && [ $n -lt 600 ]; do sleep 0.2; n=$((n+1)); done
for i in 0 1; do echo "second-$i %(m)s"; done
sleep 120
''' % {'m': MARKER}
FIRST = sorted(['first-0 patient=%s' % MARKER, 'first-1 patient=%s' % MARKER, 'first-2 patient=%s' % MARKER,
                'first-err %s' % MARKER])
SECOND = ['second-0 %s' % MARKER, 'second-1 %s' % MARKER]


@pytest.fixture
def client():
    return docker_client_with(BASE, 'make host builds it')


@pytest.fixture
def operator_pki(tmp_path):
    """The operator's key pair: the certificate goes to the host, the key stays in the test."""
    key, cert = tmp_path / 'operator.key', tmp_path / 'operator.crt'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', str(key), '-out',
                    str(cert), '-subj', '/CN=logarc operator', '-days', '2'], check=True, capture_output=True)
    return key, cert


@pytest.fixture
def labelled(client):
    """A least-privilege container of a service of its own, printing the lines above."""
    service = 'logarc-%s' % uuid.uuid4().hex[:8]
    container = client.containers.run(
        BASE, ['sh', '-c', SCRIPT], name='%s-printer' % service, labels={'llmops.service': service},
        detach=True, user='65534:65534', read_only=True, tmpfs={'/tmp': 'size=1m'}, cap_drop=['ALL'],
        security_opt=['no-new-privileges'], network_mode='none', mem_limit='32m', pids_limit=32)
    try:
        yield service, container
    finally:
        container.remove(force=True)


def wait_for_lines(container, count):
    """Wait until Docker holds ``count`` lines, then until they are older than the module's settle time."""
    for dummy in range(100):
        if len(container.logs(stdout=True, stderr=True).splitlines()) >= count:
            time.sleep(0.6)
            return
        time.sleep(0.1)
    pytest.fail('the container did not print %d lines: %r' % (count, container.logs()))


def decrypt(path, key):
    proc = subprocess.run('openssl cms -decrypt -binary -inform DER -in "%s" -inkey "%s" | gunzip' % (path, key),
                          shell=True, capture_output=True, check=True)
    return proc.stdout.decode().splitlines()


def texts(lines):
    """The lines without Docker's timestamp."""
    return [line.split(' ', 1)[1] for line in lines]


def files_under(directory):
    return [os.path.join(root, name) for root, dummy, names in os.walk(directory) for name in names]


def in_clear(path, needle):
    """``needle`` in the file's bytes, or in them once gunzipped (a clear archive is gzip)."""
    data = open(path, 'rb').read()
    try:
        data += gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        pass
    return needle.encode() in data


BACKENDS = ['openssl'] + (['cryptography'] if _log_crypto.HAS_ENVELOPE else [])


@pytest.mark.parametrize('backend', BACKENDS)
def test_archives_only_new_lines_encrypted(run_module, tmp_path, operator_pki, labelled, backend):
    service, container = labelled
    key, cert = operator_pki
    state = tmp_path / 'state'
    args = dict(service=service, state_dir=str(state), certificate=str(cert), encryption_backend=backend,
                settle_seconds=0.5)
    wait_for_lines(container, 4)

    failed, planned = run_module(log_archive, args, check_mode=True, diff=True)
    assert not failed, planned
    assert planned['changed'] and [a['lines'] for a in planned['archives']] == [4]
    assert not state.exists(), 'check mode wrote %s' % files_under(str(state))
    assert container.id[:12] in planned['diff']['after'] and planned['diff']['before'] == ''

    failed, first = run_module(log_archive, args)
    assert not failed, first
    (archive,) = first['archives']
    assert archive['path'].endswith('.log.gz.p7m') and archive['lines'] == 4
    assert first['encryption']['backend'] == backend
    assert sorted(texts(decrypt(archive['path'], key))) == FIRST
    logs_dir = state / service / 'logs'
    assert stat.S_IMODE(os.stat(str(logs_dir)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.dirname(archive['path'])).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(archive['path']).st_mode) == 0o600
    assert not [path for path in files_under(str(logs_dir)) if in_clear(path, MARKER)]

    failed, again = run_module(log_archive, args)
    assert not failed and not again['changed'] and again['archives'] == [], again

    container.exec_run(['touch', '/tmp/go'])
    wait_for_lines(container, 6)
    failed, second = run_module(log_archive, dict(args, keep=1))
    assert not failed, second
    (newer,) = second['archives']
    assert texts(decrypt(newer['path'], key)) == SECOND
    assert second['removed'] == [archive['path']] and not os.path.exists(archive['path'])
    assert second['positions'][container.id]['last'] == newer['last']
    assert not [path for path in files_under(str(logs_dir)) if in_clear(path, MARKER)]


def test_without_certificate_the_archive_is_gzip_in_clear(run_module, tmp_path, labelled):
    """The control of the check above: the marker is found when the archive is not encrypted."""
    service, container = labelled
    wait_for_lines(container, 4)
    failed, result = run_module(log_archive, dict(service=service, state_dir=str(tmp_path), settle_seconds=0.5))
    assert not failed, result
    (archive,) = result['archives']
    assert archive['path'].endswith('.log.gz') and result['encryption'] is None
    assert in_clear(archive['path'], MARKER)
    assert sorted(texts(gzip.decompress(open(archive['path'], 'rb').read()).decode().splitlines())) == FIRST


def test_bad_certificate_fails_before_writing(run_module, tmp_path, operator_pki, labelled):
    service, dummy = labelled
    key, cert = operator_pki
    bundle = tmp_path / 'bundle.pem'
    bundle.write_bytes(cert.read_bytes() + key.read_bytes())
    for path, words in ((tmp_path / 'missing.crt', 'does not exist'), (bundle, 'holds a private key')):
        failed, result = run_module(log_archive, dict(service=service, state_dir=str(tmp_path / 'state'),
                                                      certificate=str(path)))
        assert failed and str(path) in result['msg'] and words in result['msg'], result
    assert not (tmp_path / 'state').exists()


def test_lines_rotated_away_between_runs_are_reported(client, run_module, tmp_path):
    """Docker keeps 2 files of 1 kB here: 100 lines push the archived position out, and the run says so."""
    from docker.types import LogConfig

    service = 'logarc-%s' % uuid.uuid4().hex[:8]
    script = ('echo start; n=0; while [ ! -e /tmp/go ] && [ $n -lt 600 ]; do sleep 0.2; n=$((n+1)); done; '
              'i=0; while [ $i -lt 100 ]; do echo "burst-$i"; i=$((i+1)); done; sleep 120')
    container = client.containers.run(
        BASE, ['sh', '-c', script], name='%s-rotating' % service, labels={'llmops.service': service}, detach=True,
        user='65534:65534', read_only=True, tmpfs={'/tmp': 'size=1m'}, cap_drop=['ALL'],
        security_opt=['no-new-privileges'], network_mode='none', mem_limit='32m', pids_limit=32,
        log_config=LogConfig(type='json-file', config={'max-size': '1k', 'max-file': '2'}))
    try:
        wait_for_lines(container, 1)
        args = dict(service=service, state_dir=str(tmp_path), settle_seconds=0.5)
        failed, first = run_module(log_archive, args)
        assert not failed and first['archives'][0]['lines'] == 1 and not first['archives'][0]['gap'], first
        container.exec_run(['touch', '/tmp/go'])
        for dummy in range(100):
            if b'burst-99' in container.logs():
                break
            time.sleep(0.1)
        time.sleep(0.6)
        failed, second = run_module(log_archive, args)
        assert not failed, second
        (archive,) = second['archives']
        assert archive['gap'] and 0 < archive['lines'] < 100
        warnings = json.dumps(second.get('warnings'))
        assert 'may be lost' in warnings and container.name in warnings, warnings
        got = texts(gzip.decompress(open(archive['path'], 'rb').read()).decode().splitlines())
        assert got == ['burst-%d' % i for i in range(100 - len(got), 100)]
    finally:
        container.remove(force=True)
