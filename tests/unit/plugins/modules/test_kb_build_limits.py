# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kb_build refuses hostile input before any container runs: symlinks, paths outside the documents
directory, files over the size caps, zip bombs (judged from the zip directory, unopened).

No docker here: the identity is given and DOCKER_HOST points nowhere, so a test that reached the
builder would fail on its own. The builder's container options are checked as values.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import time
import zipfile

import pytest

from _kb_documents import write_zip_bomb_docx
from ansible_collections.llmops.bluegreen.plugins.module_utils import _kb_container
from ansible_collections.llmops.bluegreen.plugins.modules import kb_build

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
IDENTITY = {'builder_digest': 'b' * 64, 'embedding_digest': 'e' * 64}


@pytest.fixture(autouse=True)
def no_docker(monkeypatch):
    monkeypatch.setenv('DOCKER_HOST', 'unix:///nonexistent/kbsafe-docker.sock')


@pytest.fixture(scope='module')
def bomb(tmp_path_factory):
    return write_zip_bomb_docx(tmp_path_factory.mktemp('bomb') / 'report.docx')


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / 'docs'
    root.mkdir()
    (root / 'handbook.md').write_text('# Handbook\n\nAnnual leave is 25 days.\n')
    return root


def module_args(docs, tmp_path, **extra):
    args = {'docs': str(docs), 'kb_root': str(tmp_path / 'kb'), 'name': 'handbook',
            'builder_image': 'kbsafe-no-such-image:none', 'identity': dict(IDENTITY)}
    args.update(extra)
    return args


def test_the_bomb_is_a_real_one(bomb):
    with zipfile.ZipFile(str(bomb)) as archive:
        member = archive.getinfo('word/document.xml')
    assert member.file_size == 1024 ** 3
    assert os.path.getsize(str(bomb)) < 2 * 1024 * 1024


@pytest.mark.parametrize('check_mode', [True, False])
def test_zip_bomb_docx_is_refused_fast_naming_file_size_cap_and_variable(run_module, docs, tmp_path, bomb,
                                                                         check_mode):
    with open(str(bomb), 'rb') as src, open(str(docs / 'report.docx'), 'wb') as dst:
        dst.write(src.read())
    started = time.monotonic()
    failed, result = run_module(kb_build, module_args(docs, tmp_path), check_mode=check_mode)
    assert time.monotonic() - started < 5
    assert failed
    assert result['file'] == 'report.docx'
    msg = result['msg']
    with zipfile.ZipFile(str(bomb)) as archive:
        expanded = sum(member.file_size for member in archive.infolist())
    assert msg.startswith('report.docx: zip container expands to %d bytes' % expanded), msg
    assert 'max_unzipped_bytes=268435456' in msg and 'knowledge_base_max_unzipped_bytes' in msg
    assert not (tmp_path / 'kb').exists()


def test_zip_bomb_under_the_size_cap_is_refused_by_its_ratio(run_module, docs, tmp_path):
    write_zip_bomb_docx(docs / 'small-bomb.docx', 64 * 1024 * 1024)
    failed, result = run_module(kb_build, module_args(docs, tmp_path), check_mode=True)
    assert failed and result['file'] == 'small-bomb.docx'
    assert re.search(r'member word/document.xml expands \d+ bytes to 67108864 \(ratio \d+:1\)', result['msg'])
    assert 'max_zip_ratio=100' in result['msg'] and 'knowledge_base_max_zip_ratio' in result['msg']
    # The operator may raise both caps for a genuine document: then it is not refused by them.
    failed, result = run_module(kb_build, module_args(docs, tmp_path, max_zip_ratio=5000), check_mode=True)
    assert not failed, result['msg']


@pytest.mark.parametrize('name,member', [('deck.pptx', 'ppt/slides/slide1.xml'),
                                         ('book.xlsx', 'xl/worksheets/sheet1.xml'),
                                         ('guide.epub', 'OEBPS/chapter1.xhtml'), ('contract.odt', 'content.xml')])
def test_zip_bombs_of_every_zip_type_are_refused(run_module, docs, tmp_path, name, member):
    write_zip_bomb_docx(docs / name, 64 * 1024 * 1024, member_name=member)
    failed, result = run_module(kb_build, module_args(docs, tmp_path), check_mode=True)
    assert failed and result['file'] == name
    assert result['msg'].startswith('%s: member %s expands ' % (name, member))
    assert 'max_zip_ratio=100' in result['msg']
    failed, result = run_module(kb_build, module_args(docs, tmp_path, max_unzipped_bytes=32 * 1024 * 1024),
                                check_mode=True)
    assert failed and 'max_unzipped_bytes=33554432' in result['msg']


@pytest.mark.parametrize('name,data,message', [
    ('deck.pptx', b'plain text', 'deck.pptx: corrupt or unreadable PPTX (not a zip container: File is not a zip '
                                 'file): open it in PowerPoint or LibreOffice Impress and save it again as .pptx'),
    ('book.xlsx', b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1' + b'\0' * 504,
     'book.xlsx: XLSX is password-protected or an old binary .doc/.xls/.ppt under a new name (an OLE file, not a '
     'zip container): remove the password, or open it in Excel or LibreOffice Calc and save it again as .xlsx'),
])
def test_a_document_of_a_zip_type_that_is_no_zip_names_the_fix(run_module, docs, tmp_path, name, data, message):
    (docs / name).write_bytes(data)
    failed, result = run_module(kb_build, module_args(docs, tmp_path), check_mode=True)
    assert failed and result['file'] == name and result['msg'].startswith(message)


def test_per_file_cap_refuses_a_big_plain_file_naming_it(run_module, docs, tmp_path):
    (docs / 'big.txt').write_text('x' * 4096)
    for check_mode in (True, False):
        failed, result = run_module(kb_build, module_args(docs, tmp_path, max_file_bytes=4000),
                                    check_mode=check_mode)
        assert failed and result['file'] == 'big.txt'
        assert 'big.txt is 4096 bytes, over the cap max_file_bytes=4000' in result['msg']
        assert 'knowledge_base_max_file_bytes' in result['msg']
    failed, result = run_module(kb_build, module_args(docs, tmp_path, max_file_bytes=4096), check_mode=True)
    assert not failed, result['msg']


def test_total_cap_names_the_variable(run_module, docs, tmp_path):
    (docs / 'a.txt').write_text('a' * 3000)
    (docs / 'b.txt').write_text('b' * 3000)
    failed, result = run_module(kb_build, module_args(docs, tmp_path, max_total_bytes=5000), check_mode=True)
    assert failed
    assert 'over the cap max_total_bytes=5000' in result['msg'] and 'knowledge_base_max_total_bytes' in result['msg']


@pytest.mark.parametrize('check_mode', [True, False])
def test_symlink_to_a_file_outside_is_refused_naming_it(run_module, docs, tmp_path, check_mode):
    secret = tmp_path / 'id_rsa.txt'
    secret.write_text('-----BEGIN OPENSSH PRIVATE KEY----- kbsafe-secret\n')
    os.symlink(str(secret), str(docs / 'notes.txt'))
    failed, result = run_module(kb_build, module_args(docs, tmp_path), check_mode=check_mode)
    assert failed
    assert 'symlink' in result['msg'] and str(docs / 'notes.txt') in result['msg']
    assert not (tmp_path / 'kb').exists()


def test_symlinked_directory_is_refused(run_module, docs, tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'shadow.txt').write_text('root:secret\n')
    os.symlink(str(outside), str(docs / 'more'))
    failed, result = run_module(kb_build, module_args(docs, tmp_path), check_mode=True)
    assert failed and 'symlink' in result['msg'] and str(docs / 'more') in result['msg']


def test_bad_caps_are_refused(run_module, docs, tmp_path):
    failed, result = run_module(kb_build, module_args(docs, tmp_path, max_file_bytes=0), check_mode=True)
    assert failed and 'max_file_bytes must be at least 1' in result['msg']


def test_builder_containers_are_confined(monkeypatch):
    monkeypatch.setattr(os, 'getuid', lambda: 0)
    options = _kb_container.hardening('768m', 128)
    assert options == {
        'user': '10001:10001', 'network_mode': 'none', 'cap_drop': ['ALL'],
        'security_opt': ['no-new-privileges:true'], 'read_only': True,
        'tmpfs': {'/tmp': 'rw,nosuid,nodev,size=256m'}, 'mem_limit': '768m', 'memswap_limit': '768m',
        'pids_limit': 128}
    # A module that is not root runs the builder as itself (never as root).
    monkeypatch.setattr(os, 'getuid', lambda: 1234)
    monkeypatch.setattr(os, 'getgid', lambda: 1234)
    assert _kb_container.hardening()['user'] == '1234:1234'


def test_a_cpu_quota_is_a_nano_cpus_limit_and_none_means_no_quota():
    assert _kb_container.hardening('1g', 64, 1.5)['nano_cpus'] == 1500000000
    assert 'nano_cpus' not in _kb_container.hardening('1g', 64)


@pytest.mark.parametrize('option, value, words', [
    ('builder_cpus', 0.0, 'builder_cpus must be a CPU count'),
    ('builder_cpus', -2.0, 'leave it unset for no quota'),
    ('embedding_batch_size', 0, 'embedding_batch_size must be between 1 and 4096'),
    ('embedding_batch_size', 100000, 'leave it unset for the backend default'),
])
def test_a_bad_cpu_quota_or_batch_size_is_refused(run_module, docs, tmp_path, option, value, words):
    failed, result = run_module(kb_build, module_args(docs, tmp_path, **{option: value}), check_mode=True)
    assert failed and words in result['msg'], result


def test_builder_uid_is_the_qa_api_images_user():
    with open(os.path.join(REPO, 'images', 'qa-api', 'Dockerfile')) as handle:
        dockerfile = handle.read()
    assert '--uid %d' % _kb_container.BUILDER_UID in dockerfile
    assert '--gid %d' % _kb_container.BUILDER_GID in dockerfile
    assert re.search(r'^USER qa$', dockerfile, re.M)


def test_role_passes_the_caps_and_limits():
    with open(os.path.join(REPO, 'roles', 'knowledge_base', 'tasks', 'main.yml')) as handle:
        tasks = handle.read()
    for option in ('max_file_bytes', 'max_total_bytes', 'max_unzipped_bytes', 'max_zip_ratio'):
        assert tasks.count('%s: "{{ knowledge_base_%s }}"' % (option, option)) == 2  # build and predict
    for option in ('builder_memory', 'builder_pids_limit'):
        assert tasks.count('%s: "{{ knowledge_base_%s }}"' % (option, option)) == 2  # build and identity
