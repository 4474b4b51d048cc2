#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r"""
module: log_archive
short_description: Archive a service's container logs since the last run, encrypted to an operator certificate
version_added: 0.4.0
description:
  - Reads, through the Docker engine, the logs of every container (running or stopped) labelled
    C(llmops.service=<service>) since the last run, and writes one gzip archive per container and run under
    C(<state_dir>/<service>/logs/<container name>/) (directories 0700, files 0600, written atomically).
  - The position of each container (the newest line time archived, and how many lines had that time) is kept in
    C(logs/positions.json), so lines are neither lost nor archived twice between runs. Docker keeps only its
    rotation window (C(docker_host_log_max_size) times C(docker_host_log_max_file)); run this more often than it
    fills. When the line at a position has rotated away before a run, the run warns that lines may be lost.
  - With O(certificate) every archive is a CMS envelope (DER, C(.log.gz.p7m)) that only the holders of the
    certificates' private keys can open; the clear text exists only in memory. Read one with
    C(openssl cms -decrypt -binary -inform DER -in <file> -inkey operator.key | gunzip).
  - Lines newer than O(settle_seconds) are left for the next run (stdout and stderr lines can reach the log
    file slightly out of order).
author:
  - llmops.bluegreen developers (@llmops)
requirements:
  - Docker SDK for Python (C(docker)) on the host that runs the containers.
  - C(cryptography) when O(certificate) is given, and the C(openssl) command to encrypt (without it, a
    C(cryptography) that has C(PKCS7EnvelopeBuilder)).
extends_documentation_fragment:
  - llmops.bluegreen.attributes
  - llmops.bluegreen.attributes.service_state
attributes:
  check_mode:
    support: full
    details:
      - Reads the logs and reports the archives it would write and remove; writes nothing.
  diff_mode:
    support: full
    details:
      - The position of each container before and after.
  idempotent:
    support: partial
    details:
      - A second run archives only lines written since the first.
options:
  certificate:
    description:
      - PEM file on the host with the X.509 certificate of each operator who may read the archives (public part
        only; a file holding a private key is refused). Every certificate in the file is a recipient.
      - RSA keys of 2048 bits or more, or EC keys.
      - Not given, archives are gzip files in clear text (still 0600 under a 0700 directory).
    type: path
  encryption_backend:
    description:
      - V(cryptography) uses the C(cryptography) library's PKCS7EnvelopeBuilder (AES-256-CBC, RSA only).
      - V(openssl) pipes the data to C(openssl cms -encrypt) (AES-256-GCM, authenticated; RSA-OAEP or EC).
      - V(auto) takes V(openssl) when the command is installed (authenticated encryption), else V(cryptography)
        when the installed version has the builder and every key is RSA.
    type: str
    choices: [auto, cryptography, openssl]
    default: auto
  keep:
    description:
      - How many archives of each container stay (the newest); older ones are removed. At least 1.
    type: int
    default: 30
  settle_seconds:
    description:
      - Lines younger than this are left for the next run.
    type: float
    default: 1.0
seealso:
  - module: llmops.bluegreen.bluegreen_info
"""

EXAMPLES = r"""
- name: Archive the logs of service qa, encrypted to the operators' certificates
  llmops.bluegreen.log_archive:
    service: qa
    certificate: /etc/llmops/log-archive-recipients.crt
    keep: 60
  register: archived

- name: Archive without encryption (a test machine)
  llmops.bluegreen.log_archive:
    service: qa
"""

RETURN = r"""
archive_dir:
  description: The directory of the archives, C(<state_dir>/<service>/logs).
  returned: always
  type: str
  sample: /var/lib/llmops/qa/logs
archives:
  description:
    - One entry per container with new lines, the archive written (in check mode, that would be written).
    - Keys C(container), C(id) (12 hex), C(path), C(lines), C(first) and C(last) (line times, UTC), C(bytes)
      (size on disk; 0 in check mode), C(gap) (true when Docker no longer held the line at the last position, so
      lines between it and C(first) may have rotated away; a warning says so).
  returned: always
  type: list
  elements: dict
  sample: [{"container": "qa-gateway", "id": "3f2a9c1d0b7e", "lines": 1204, "bytes": 20911,
            "path": "/var/lib/llmops/qa/logs/qa-gateway/20261202T020000.000000000Z-3f2a9c1d0b7e.log.gz.p7m",
            "first": "2026-12-02T02:00:00.000000000Z", "last": "2026-12-03T01:59:58.120000000Z", "gap": false}]
removed:
  description: Archives removed by the retention (in check mode, that would be removed), and leftover temporary files.
  returned: always
  type: list
  elements: str
  sample: []
positions:
  description: Position of each container after the run, by container ID.
  returned: always
  type: dict
  sample: {"3f2a9c1d0b7e...": {"name": "qa-gateway", "last": "2026-12-03T01:59:58.120000000Z", "same": 1}}
encryption:
  description: Back end, cipher and recipients (subject, expiry, key, sha256 fingerprint); null without a certificate.
  returned: always
  type: dict
  sample: {"backend": "openssl", "cipher": "CMS AuthEnvelopedData, AES-256-GCM, RSA-OAEP SHA-256 or ECDH key agreement",
           "recipients": [{"subject": "CN=ops", "not_after": "2027-12-01T00:00:00Z", "key": "RSA 3072", "sha256": "9c1d..."}]}
"""

import fcntl
import gzip
import io
import os
import stat
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmops.bluegreen.plugins.module_utils._atomic import atomic_write
from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import DOCKER_IMPORT_ERROR, HAS_DOCKER
from ansible_collections.llmops.bluegreen.plugins.module_utils._log_archive import (
    LogArchiveError, NewLines, archive_name, check_container_name, diff_text, dump_positions, is_leftover,
    iter_lines, next_positions, read_positions, retention, since_for, ts_from_epoch)
from ansible_collections.llmops.bluegreen.plugins.module_utils._log_crypto import (
    BACKENDS, CIPHERS, CRYPTOGRAPHY_IMPORT_ERROR, HAS_CRYPTOGRAPHY, HAS_ENVELOPE, CertificateError, EncryptError,
    choose_backend, describe, encrypt, read_certificates)
from ansible_collections.llmops.bluegreen.plugins.module_utils._names import NamesError, names
from ansible_collections.llmops.bluegreen.plugins.module_utils._state import SERVICE_STATE_ARGS

if HAS_DOCKER:
    import docker
    from docker.errors import APIError, DockerException


def dir_to_fix(path):
    """True when ``path`` is missing or not 0700."""
    return not os.path.isdir(path) or stat.S_IMODE(os.stat(path).st_mode) != 0o700


def private_dir(path):
    """Create ``path`` 0700, or tighten it to 0700; True when something changed."""
    if not dir_to_fix(path):
        return False
    if not os.path.isdir(path):
        os.makedirs(path, 0o700)
    os.chmod(path, 0o700)
    return True


def hold_lock(logs_dir, service):
    handle = os.fdopen(os.open(os.path.join(logs_dir, '.lock'), os.O_WRONLY | os.O_CREAT, 0o600), 'w')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (IOError, OSError):
        handle.close()
        raise LogArchiveError('another log_archive run of service %s is writing under %s; let it finish (a schedule '
                              'should not start runs closer together than one run takes)' % (service, logs_dir))
    return handle


class Encryptor(object):
    """The certificates and back end of a run; None-like when archives stay in clear text."""

    def __init__(self, module):
        self.certs = None
        self.info = None
        path = module.params['certificate']
        if path is None:
            return
        self.certs, warnings = read_certificates(path)
        for warning in warnings:
            module.warn(warning)
        self.openssl = module.get_bin_path('openssl')
        self.backend = choose_backend(module.params['encryption_backend'], self.certs, HAS_ENVELOPE, self.openssl)
        self.info = dict(backend=self.backend, cipher=CIPHERS[self.backend],
                         recipients=[describe(cert) for cert in self.certs])

    def __call__(self, data):
        return encrypt(data, self.certs, self.backend, self.openssl) if self.certs else data


def read_new(container, position, cutoff, keep_data):
    """``(NewLines, gzip bytes or None)`` of the container's lines after ``position``."""
    chunks = container.logs(stdout=True, stderr=True, timestamps=True, stream=True, follow=False,
                            since=since_for(position))
    selector = NewLines(position, cutoff)
    buf = io.BytesIO()
    # mtime=0: the same lines give the same bytes.
    with gzip.GzipFile(fileobj=buf, mode='wb', mtime=0) as gz:
        for line in iter_lines(chunks):
            if selector.feed(line) and keep_data:
                gz.write(line + b'\n')
    return selector, (buf.getvalue() if keep_data else None)


def apply_retention(logs_dir, keep, new_paths, check_mode):
    """Remove all but the ``keep`` newest archives in each container directory (including those of
    containers gone since), and leftovers of killed writes."""
    removed = []
    for entry in sorted(os.listdir(logs_dir)) if os.path.isdir(logs_dir) else []:
        cdir = os.path.join(logs_dir, entry)
        if os.path.islink(cdir) or not os.path.isdir(cdir):
            continue
        present = set(os.listdir(cdir)) | set(os.path.basename(p) for p in new_paths if os.path.dirname(p) == cdir)
        dummy, old = retention(present, keep)
        for name in old + sorted(name for name in present if is_leftover(name)):
            removed.append(os.path.join(cdir, name))
            if not check_mode:
                os.unlink(removed[-1])
    return removed


def run(module):
    params, check = module.params, module.check_mode
    paths = names(params['service'], params['state_dir'])
    logs_dir, positions_path = paths['logs_dir'], paths['log_positions']
    if params['keep'] < 1:
        raise LogArchiveError('keep must be at least 1, not %d' % params['keep'])
    encryptor = Encryptor(module)
    changed = dir_to_fix(logs_dir) if check else private_dir(logs_dir)
    lock = None if check else hold_lock(logs_dir, params['service'])
    try:
        positions = read_positions(positions_path)
        client = docker.from_env()
        containers = client.containers.list(all=True, filters={'label': 'llmops.service=%s' % params['service']})
        cutoff = ts_from_epoch(time.time() - params['settle_seconds'])
        current, archives = {}, []
        for container in sorted(containers, key=lambda c: c.name):
            name, cid = check_container_name(container.name), container.id
            previous = positions['containers'].get(cid)
            try:
                selector, data = read_new(container, previous, cutoff, not check)
            except APIError as exc:
                module.warn('skipped container %s: Docker cannot read its logs back (%s); give it the json-file or '
                            'local log driver' % (name, exc.explanation or exc))
                continue
            if selector.count == 0:
                if previous:
                    current[cid] = dict(previous, name=name)
                continue
            path = os.path.join(logs_dir, name, archive_name(selector.first, cid, encryptor.certs))
            entry = dict(container=name, id=cid[:12], path=path, lines=selector.count,
                         first=selector.first, last=selector.last, bytes=0, gap=selector.gap)
            if selector.gap:
                module.warn('container %s: the line at the last position (%s) has rotated out of Docker\'s log, so '
                            'lines up to %s may be lost; archive more often, or raise docker_host_log_max_size or '
                            'docker_host_log_max_file' % (name, previous['last'], selector.first))
            if not check:
                data = encryptor(data)
                private_dir(os.path.dirname(path))
                atomic_write(path, data, 0o600)
                entry['bytes'] = len(data)
            archives.append(entry)
            current[cid] = dict(selector.position, name=name)
        after = next_positions(positions, current, set(c.id for c in containers))
        if after != positions:
            changed = True
            if not check:
                atomic_write(positions_path, dump_positions(after), 0o600)
        removed = apply_retention(logs_dir, params['keep'], [a['path'] for a in archives], check)
    finally:
        if lock is not None:
            lock.close()
    result = dict(changed=bool(changed or archives or removed), archive_dir=logs_dir, archives=archives,
                  removed=removed, positions=after['containers'], encryption=encryptor.info)
    if module._diff:
        result['diff'] = dict(before=diff_text(positions), after=diff_text(after),
                              before_header=positions_path, after_header=positions_path)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **SERVICE_STATE_ARGS,
            certificate=dict(type='path'),
            encryption_backend=dict(type='str', choices=list(BACKENDS), default='auto'),
            keep=dict(type='int', default=30),
            settle_seconds=dict(type='float', default=1.0),
        ),
        supports_check_mode=True,
    )
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib('docker'), exception=DOCKER_IMPORT_ERROR)
    if module.params['certificate'] is not None and not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    try:
        result = run(module)
    except (LogArchiveError, CertificateError, EncryptError, NamesError) as exc:
        module.fail_json(msg='log_archive: %s' % exc)
    except DockerException as exc:
        module.fail_json(msg='cannot read container logs through the Docker engine: %s; start dockerd, and run the '
                             'module as a user allowed to use its socket' % exc)
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot write the archives of service %s: %s; the module needs write access to %s '
                             '(become: true)' % (module.params['service'], exc, module.params['state_dir']))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
