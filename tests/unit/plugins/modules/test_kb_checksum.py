# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kb_checksum: fingerprint and verification against a manifest, read-only."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import fingerprint
from ansible_collections.llmops.bluegreen.plugins.modules import kb_checksum


def write(path, data):
    with open(str(path), 'wb') as handle:
        handle.write(data)


@pytest.fixture
def kb_dir(tmp_path):
    """A sealed version directory: manifest lists every file and the checksum."""
    root = tmp_path / 'v1'
    (root / 'sub').mkdir(parents=True)
    write(root / 'chunks.jsonl', b'{"id": 0}\n')
    write(root / 'index.faiss', b'\x00\x01binary')
    write(root / 'sub' / 'extra.txt', b'extra')
    checksum, digests = fingerprint(str(root))
    write(root / 'manifest.json', json.dumps({'files': dict(digests), 'checksum': checksum}).encode())
    return root


def snapshot(root):
    """Content and mtimes of every file, to prove the module changed nothing."""
    state = {}
    for dirpath, _dirs, files in os.walk(str(root)):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, 'rb') as handle:
                state[path] = (handle.read(), os.stat(path).st_mtime_ns)
    return state


def test_fingerprint_only(run_module, kb_dir):
    failed, result = run_module(kb_checksum, {'path': str(kb_dir)})
    assert not failed
    assert result['changed'] is False
    assert result['checksum'] == fingerprint(str(kb_dir))[0]
    assert result['file_count'] == 3
    assert 'verified' not in result


def test_verify_ok_and_read_only(run_module, kb_dir):
    before = snapshot(kb_dir)
    failed, result = run_module(kb_checksum, {'path': str(kb_dir), 'verify': True})
    assert not failed, result['msg']
    assert result['verified'] is True
    assert result['manifest'] == str(kb_dir / 'manifest.json')
    assert snapshot(kb_dir) == before


def test_check_mode_gives_same_result(run_module, kb_dir):
    _failed, normal = run_module(kb_checksum, {'path': str(kb_dir), 'verify': True})
    _failed, check = run_module(kb_checksum, {'path': str(kb_dir), 'verify': True}, check_mode=True)
    assert check == normal


def test_verify_names_changed_file(run_module, kb_dir):
    write(kb_dir / 'chunks.jsonl', b'{"id": 0, "tampered": true}\n')
    failed, result = run_module(kb_checksum, {'path': str(kb_dir), 'verify': True})
    assert failed
    assert result['mismatches'] == {'changed': ['chunks.jsonl'], 'added': [], 'removed': []}
    assert 'changed: chunks.jsonl' in result['msg']
    assert result['verified'] is False


def test_verify_names_added_and_removed_files(run_module, kb_dir):
    write(kb_dir / 'sub' / 'intruder.bin', b'x')
    os.unlink(str(kb_dir / 'index.faiss'))
    failed, result = run_module(kb_checksum, {'path': str(kb_dir), 'verify': True})
    assert failed
    assert result['mismatches'] == {'changed': [], 'added': ['sub/intruder.bin'], 'removed': ['index.faiss']}
    assert 'added: sub/intruder.bin' in result['msg']
    assert 'removed: index.faiss' in result['msg']


def test_verify_detects_wrong_overall_checksum(run_module, kb_dir):
    manifest = json.loads((kb_dir / 'manifest.json').read_text())
    manifest['checksum'] = '0' * 64
    (kb_dir / 'manifest.json').write_text(json.dumps(manifest))
    failed, result = run_module(kb_checksum, {'path': str(kb_dir), 'verify': True})
    assert failed
    assert 'manifest checksum ' + '0' * 64 in result['msg']


def test_manifest_outside_directory(run_module, kb_dir, tmp_path):
    outside = tmp_path / 'elsewhere.json'
    os.rename(str(kb_dir / 'manifest.json'), str(outside))
    failed, result = run_module(kb_checksum, {'path': str(kb_dir), 'verify': True, 'manifest': str(outside)})
    assert not failed, result['msg']
    assert result['manifest'] == str(outside)


def test_missing_manifest_is_named(run_module, kb_dir):
    os.unlink(str(kb_dir / 'manifest.json'))
    failed, result = run_module(kb_checksum, {'path': str(kb_dir), 'verify': True})
    assert failed
    assert str(kb_dir / 'manifest.json') in result['msg']
    assert 'does not exist' in result['msg']


def test_unsealed_manifest_is_refused(run_module, kb_dir):
    (kb_dir / 'manifest.json').write_text('{"schema": 1}')
    failed, result = run_module(kb_checksum, {'path': str(kb_dir), 'verify': True})
    assert failed
    assert 'neither "files" nor "checksum"' in result['msg']


def test_path_not_a_directory(run_module, tmp_path):
    failed, result = run_module(kb_checksum, {'path': str(tmp_path / 'nope')})
    assert failed
    assert result['msg'] == 'path %s is not a directory' % (tmp_path / 'nope')


def test_symlink_fails_naming_it(run_module, kb_dir):
    os.symlink('chunks.jsonl', str(kb_dir / 'alias.jsonl'))
    failed, result = run_module(kb_checksum, {'path': str(kb_dir)})
    assert failed
    assert str(kb_dir / 'alias.jsonl') in result['msg']
