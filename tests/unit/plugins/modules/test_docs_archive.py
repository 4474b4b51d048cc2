# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs_archive: the documents as one reproducible tar.gz that GNU tar extracts to the same names and bytes."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.llmops.bluegreen.plugins.modules import docs_archive


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / 'docs'
    write(root / 'handbook.md', b'# Leave\n\n25 days.\n')
    write(root / u'制度' / u'报销规定.md', u'# 报销\n\n三十天内提交。\n'.encode('utf-8'))
    write(root / 'deep' / 'er' / 'manifest.json', b'{"a document": "named like a manifest"}')
    write(root / 'manifest.json', b'{"also": "a document"}')
    write(root / 'scan.pdf', bytes(range(256)) * 64)
    return root


def files_of(root):
    found = {}
    for dirpath, _dirs, names in os.walk(str(root)):
        for name in names:
            path = os.path.join(dirpath, name)
            found[os.path.relpath(path, str(root))] = open(path, 'rb').read()
    return found


def test_gnu_tar_extracts_every_document_with_its_bytes_and_private_modes(run_module, docs, tmp_path):
    dest = tmp_path / 'cache' / 'svc' / 'docs.tar.gz'
    failed, result = run_module(docs_archive, {'src': str(docs), 'dest': str(dest)})
    assert not failed, result
    assert result['changed'] is True and result['files'] == 5
    assert result['bytes'] == sum(len(data) for data in files_of(docs).values())
    assert stat.S_IMODE(os.stat(str(dest)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(dest.parent)).st_mode) == 0o700
    out = tmp_path / 'out'
    out.mkdir()
    subprocess.run(['tar', '-xzf', str(dest), '-C', str(out)], check=True)
    assert files_of(out) == files_of(docs)
    assert stat.S_IMODE(os.stat(str(out / u'制度')).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(str(out / 'handbook.md')).st_mode) == 0o644


def test_the_same_documents_elsewhere_and_later_give_the_same_bytes(run_module, docs, tmp_path):
    dest = tmp_path / 'docs.tar.gz'
    _failed, first = run_module(docs_archive, {'src': str(docs), 'dest': str(dest)})
    inode = os.stat(str(dest)).st_ino
    # A fresh checkout: other directory, other times, same names and bytes.
    other = tmp_path / 'checkout'
    shutil.copytree(str(docs), str(other), copy_function=shutil.copy)
    os.utime(str(other / 'handbook.md'), (1700000000, 1700000000))
    failed, again = run_module(docs_archive, {'src': str(other), 'dest': str(dest)})
    assert not failed and again['changed'] is False
    assert again['sha256'] == first['sha256']
    assert os.stat(str(dest)).st_ino == inode, 'an unchanged archive must not be rewritten'


def test_one_changed_byte_changes_the_archive_and_check_mode_leaves_it(run_module, docs, tmp_path):
    dest = tmp_path / 'docs.tar.gz'
    _failed, first = run_module(docs_archive, {'src': str(docs), 'dest': str(dest)})
    write(docs / 'handbook.md', b'# Leave\n\n26 days.\n')
    before = dest.read_bytes()
    failed, check = run_module(docs_archive, {'src': str(docs), 'dest': str(dest)}, check_mode=True)
    assert not failed and check['changed'] is True and check['sha256'] != first['sha256']
    assert dest.read_bytes() == before
    _failed, real = run_module(docs_archive, {'src': str(docs), 'dest': str(dest)})
    assert real['changed'] is True and real['sha256'] == check['sha256']
    assert not [name for name in os.listdir(str(tmp_path)) if name.endswith('.tmp')]


def test_check_mode_writes_nothing_where_there_was_nothing(run_module, docs, tmp_path):
    dest = tmp_path / 'new' / 'docs.tar.gz'
    failed, result = run_module(docs_archive, {'src': str(docs), 'dest': str(dest)}, check_mode=True)
    assert not failed and result['changed'] is True
    assert not dest.parent.exists()


@pytest.mark.parametrize('make,kind', [
    (lambda root: os.symlink('/etc/passwd', str(root / 'deep' / 'passwd.md')), 'symlink'),
    (lambda root: os.mkfifo(str(root / 'pipe.md')), 'not a regular file'),
], ids=['symlink', 'fifo'])
def test_a_link_or_special_file_fails_naming_it_and_leaves_the_old_archive(run_module, docs, tmp_path, make, kind):
    dest = tmp_path / 'docs.tar.gz'
    run_module(docs_archive, {'src': str(docs), 'dest': str(dest)})
    before = dest.read_bytes()
    make(docs)
    failed, result = run_module(docs_archive, {'src': str(docs), 'dest': str(dest)})
    assert failed and kind in result['msg'] and str(docs) in result['msg'], result['msg']
    assert dest.read_bytes() == before
    assert not [name for name in os.listdir(str(tmp_path)) if name.endswith('.tmp')]


def test_a_missing_source_or_a_directory_as_dest_is_named(run_module, docs, tmp_path):
    failed, result = run_module(docs_archive, {'src': str(tmp_path / 'nope'), 'dest': str(tmp_path / 'a.tgz')})
    assert failed and 'nope is not a directory' in result['msg']
    failed, result = run_module(docs_archive, {'src': str(docs), 'dest': str(tmp_path)})
    assert failed and 'is a directory: give the path of the archive file' in result['msg']
