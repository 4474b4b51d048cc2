# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The directory fingerprint of docs/contracts.md (kb_checksum, kb_build and qa-api must agree)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import (
    FingerprintError,
    checksum_of,
    compare_digests,
    fingerprint,
)

EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
# Golden vector: 'a-b.txt' < 'a.txt' < 'a/b.txt' in plain string order ('-' < '.' < '/'),
# which differs from per-component order; other implementations must give the same value.
GOLDEN_TREE = {'a.txt': b'hello\n', 'a-b.txt': b'x', 'a/b.txt': b'world\n'}
GOLDEN_CHECKSUM = '0c304c434682cf42b62d1aa69827b0d06a5d018b9efc0f7c098ff301b9a8f5e7'


def make_tree(root, files, order=None):
    for rel in order or sorted(files):
        path = os.path.join(str(root), *rel.split('/'))
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, 'wb') as handle:
            handle.write(files[rel])
    return str(root)


def test_empty_directory_is_sha256_of_empty_string(tmp_path):
    assert fingerprint(str(tmp_path)) == (EMPTY_SHA256, [])


def test_golden_vector(tmp_path):
    checksum, digests = fingerprint(make_tree(tmp_path, GOLDEN_TREE))
    assert checksum == GOLDEN_CHECKSUM
    assert [rel for rel, _sha in digests] == ['a-b.txt', 'a.txt', 'a/b.txt']
    assert dict(digests)['a.txt'] == hashlib.sha256(b'hello\n').hexdigest()


def test_formula_matches_contract(tmp_path):
    checksum, _digests = fingerprint(make_tree(tmp_path, GOLDEN_TREE))
    expected = hashlib.sha256(b''.join(
        rel.encode('utf-8') + b'\0' + hashlib.sha256(GOLDEN_TREE[rel]).hexdigest().encode('ascii') + b'\n'
        for rel in sorted(GOLDEN_TREE))).hexdigest()
    assert checksum == expected


def test_creation_order_does_not_matter(tmp_path):
    first = make_tree(tmp_path / 'one', GOLDEN_TREE, order=['a.txt', 'a/b.txt', 'a-b.txt'])
    second = make_tree(tmp_path / 'two', GOLDEN_TREE, order=['a/b.txt', 'a-b.txt', 'a.txt'])
    assert fingerprint(first)[0] == fingerprint(second)[0] == GOLDEN_CHECKSUM


def test_checksum_of_ignores_input_order():
    pairs = [('b', '1' * 64), ('a', '2' * 64)]
    assert checksum_of(pairs) == checksum_of(list(reversed(pairs)))


def test_rename_changes_checksum(tmp_path):
    root = make_tree(tmp_path, GOLDEN_TREE)
    before = fingerprint(root)[0]
    os.rename(os.path.join(root, 'a.txt'), os.path.join(root, 'c.txt'))
    assert fingerprint(root)[0] != before


def test_content_change_changes_checksum(tmp_path):
    root = make_tree(tmp_path, GOLDEN_TREE)
    before = fingerprint(root)[0]
    with open(os.path.join(root, 'a', 'b.txt'), 'ab') as handle:
        handle.write(b'!')
    assert fingerprint(root)[0] != before


def test_root_manifest_excluded_but_nested_manifest_counted(tmp_path):
    root = make_tree(tmp_path, GOLDEN_TREE)
    with open(os.path.join(root, 'manifest.json'), 'w') as handle:
        handle.write('{"checksum": "anything"}')
    assert fingerprint(root)[0] == GOLDEN_CHECKSUM
    with open(os.path.join(root, 'a', 'manifest.json'), 'w') as handle:
        handle.write('{}')
    checksum, digests = fingerprint(root)
    assert checksum != GOLDEN_CHECKSUM
    assert 'a/manifest.json' in dict(digests)
    assert 'manifest.json' not in dict(digests)


def test_symlink_is_an_error_naming_it(tmp_path):
    root = make_tree(tmp_path, GOLDEN_TREE)
    os.symlink('a.txt', os.path.join(root, 'a', 'link.txt'))
    with pytest.raises(FingerprintError) as exc:
        fingerprint(root)
    assert os.path.join(root, 'a', 'link.txt') in str(exc.value)
    assert 'symlink' in str(exc.value)


def test_symlinked_directory_is_an_error(tmp_path):
    root = make_tree(tmp_path / 'kb', GOLDEN_TREE)
    os.symlink(str(tmp_path), os.path.join(root, 'up'))
    with pytest.raises(FingerprintError, match='up'):
        fingerprint(root)


def test_fifo_is_an_error(tmp_path):
    os.mkfifo(str(tmp_path / 'pipe'))
    with pytest.raises(FingerprintError, match='pipe'):
        fingerprint(str(tmp_path))


def test_not_a_directory(tmp_path):
    with pytest.raises(FingerprintError, match='not a directory'):
        fingerprint(str(tmp_path / 'missing'))


def test_compare_digests_classifies():
    expected = {'same': 'a', 'edited': 'b', 'gone': 'c'}
    actual = {'same': 'a', 'edited': 'B', 'new': 'd'}
    assert compare_digests(expected, actual) == {'changed': ['edited'], 'added': ['new'], 'removed': ['gone']}


def test_exclude_leaves_out_generated_files_and_directories(tmp_path):
    (tmp_path / "app.py").write_text("print(1)\n")
    base, dummy = fingerprint(str(tmp_path), exclude=["__pycache__", "*.pyc", "wheels"])
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "x.whl").write_bytes(b"PK")
    (tmp_path / "stray.pyc").write_bytes(b"\0")
    assert fingerprint(str(tmp_path), exclude=["__pycache__", "*.pyc", "wheels"])[0] == base
    # Without the patterns the same tree fingerprints differently: the exclusion is what keeps it stable.
    assert fingerprint(str(tmp_path))[0] != base
    (tmp_path / "app.py").write_text("print(2)\n")
    assert fingerprint(str(tmp_path), exclude=["__pycache__", "*.pyc", "wheels"])[0] != base
