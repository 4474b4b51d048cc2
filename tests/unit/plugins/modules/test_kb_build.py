# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kb_build without the builder image: version derivation, validation, check mode, diff, sealing.

The identity of the builder and model is passed as ``identity`` (as the role's check mode does),
so no container is needed. The real builds (qa-api image) are in test_kb_build_docker.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils import _kb_builder
from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import fingerprint
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_store import finalize, make_temp_dir
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_version import (
    SUPPORTED_EXTENSIONS,
    compute_version,
    inputs_checksum,
    scan_documents,
    splitter_params,
)
from ansible_collections.llmops.bluegreen.plugins.modules import kb_build

# Never reached: every test here must finish before a container would be started.
NO_IMAGE = 'h3-no-such-image:none'
IDENTITY = {'builder_digest': 'b' * 64, 'embedding_digest': 'e' * 64}


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / 'docs'
    (root / 'policies').mkdir(parents=True)
    (root / 'handbook.md').write_text('# Handbook\n\nAnnual leave is 25 days.\n')
    (root / 'policies' / 'vpn.txt').write_text('The VPN uses port 51820.\n')
    (root / 'policies' / 'security.html').write_text('<p>Passwords need 14 characters.</p>')
    return root


@pytest.fixture
def args(docs, tmp_path):
    return {'docs': str(docs), 'kb_root': str(tmp_path / 'kb'), 'name': 'handbook', 'builder_image': NO_IMAGE,
            'identity': dict(IDENTITY)}


@pytest.fixture
def no_docker(monkeypatch):
    """Point the docker SDK at a socket that does not exist: any docker call would fail loudly."""
    monkeypatch.setenv('DOCKER_HOST', 'unix:///nonexistent/h3-docker.sock')


def version_of(run_module, args):
    failed, result = run_module(kb_build, args, check_mode=True)
    assert not failed, result['msg']
    return result['version']


def built_manifest(name, version, inputs, splitter, identity=None):
    identity = identity or IDENTITY
    return {'schema': 2, 'name': name, 'version': version, 'inputs': inputs, 'doc_count': len(inputs),
            'chunk_count': 1, 'splitter': splitter,
            'embedding': {'name': 'all-MiniLM-L6-v2', 'dim': 384, 'digest': identity['embedding_digest']},
            'builder': {'digest': identity['builder_digest']}}


def hand_built_version(args):
    """Lay out a version as the builder would (manifest without files/checksum), then seal it for real."""
    inputs, _skipped = scan_documents(args['docs'])
    splitter = splitter_params(args.get('chunk_size', 600), args.get('chunk_overlap', 80))
    version = compute_version(inputs_checksum(inputs), splitter, 'all-MiniLM-L6-v2', IDENTITY['embedding_digest'],
                              IDENTITY['builder_digest'])
    name_dir = os.path.join(args['kb_root'], args['name'])
    os.makedirs(name_dir)
    tmp = make_temp_dir(name_dir, version)
    with open(os.path.join(tmp, 'chunks.jsonl'), 'w') as handle:
        handle.write('{"id": 0, "source": "handbook.md", "chunk": 0, "text": "x", "sha256": "y"}\n')
    with open(os.path.join(tmp, 'index.faiss'), 'wb') as handle:
        handle.write(b'\x00' * 16)
    with open(os.path.join(tmp, 'manifest.json'), 'w') as handle:
        json.dump(built_manifest(args['name'], version, inputs, splitter), handle)
    finalize(tmp, os.path.join(name_dir, version))
    return os.path.join(name_dir, version)


# --- version derivation -------------------------------------------------------------------------

def test_same_inputs_same_version(run_module, args, docs, tmp_path):
    first = version_of(run_module, args)
    assert len(first) == 12 and int(first, 16) >= 0
    # A byte-identical copy elsewhere, created in another order, gives the same version.
    copy = tmp_path / 'copy'
    (copy / 'policies').mkdir(parents=True)
    for rel in ('policies/security.html', 'handbook.md', 'policies/vpn.txt'):
        (copy / rel).write_bytes((docs / rel).read_bytes())
    assert version_of(run_module, dict(args, docs=str(copy))) == first


def test_editing_one_document_gives_new_version(run_module, args, docs):
    first = version_of(run_module, args)
    (docs / 'policies' / 'vpn.txt').write_text('The VPN uses port 51821.\n')
    assert version_of(run_module, args) != first


def test_renaming_a_document_gives_new_version(run_module, args, docs):
    first = version_of(run_module, args)
    os.rename(str(docs / 'handbook.md'), str(docs / 'employee-handbook.md'))
    assert version_of(run_module, args) != first


def test_unsupported_files_do_not_change_version_and_are_listed(run_module, args, docs):
    first = version_of(run_module, args)
    (docs / 'logo.png').write_bytes(b'\x89PNG')
    (docs / 'policies' / 'notes.json').write_text('{}')
    (docs / 'manifest.json').write_text('{}')
    failed, result = run_module(kb_build, args, check_mode=True)
    assert not failed
    assert result['version'] == first
    assert result['skipped'] == ['logo.png', 'manifest.json', 'policies/notes.json']


def test_uppercase_extension_is_supported(run_module, args, docs):
    first = version_of(run_module, args)
    (docs / 'README.TXT').write_text('upper case extension')
    assert version_of(run_module, args) != first


@pytest.mark.parametrize('change', [
    {'chunk_size': 500}, {'chunk_overlap': 40}, {'embedding_name': 'bge-base-zh'},
])
def test_splitter_and_embedding_are_part_of_version(run_module, args, change):
    assert version_of(run_module, dict(args, **change)) != version_of(run_module, args)


def test_embedding_model_path_is_not_part_of_version(run_module, args):
    # The same model bytes at another path embed identically: no rebuild.
    assert version_of(run_module, dict(args, embedding_model='/models/minilm')) == version_of(run_module, args)


@pytest.mark.parametrize('key', ['embedding_digest', 'builder_digest'])
def test_model_content_and_builder_are_part_of_version(run_module, args, key):
    """Same name, other model bytes (or another builder): another version."""
    other = dict(IDENTITY, **{key: '0' * 64})
    assert version_of(run_module, dict(args, identity=other)) != version_of(run_module, args)


def test_version_formula_matches_contract():
    splitter = splitter_params(600, 80)
    canonical = json.dumps({'inputs': 'abc', 'splitter': splitter,
                            'embedding': {'name': 'all-MiniLM-L6-v2', 'digest': 'e' * 64},
                            'builder': 'b' * 64, 'schema': 2},
                           sort_keys=True, separators=(',', ':'))
    import hashlib
    assert compute_version('abc', splitter, 'all-MiniLM-L6-v2', 'e' * 64, 'b' * 64) == \
        hashlib.sha256(canonical.encode()).hexdigest()[:12]
    assert splitter['separators'][2] == u'\u3002'
    # The same vector as images/qa-api/tests/test_version_and_config.py: both sides agree.
    assert compute_version('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', splitter,
                           'all-MiniLM-L6-v2', 'a' * 64, 'b' * 64) == '785608998f02'


# --- validation, before any docker ---------------------------------------------------------------

def test_missing_docs_dir_is_named(run_module, args, tmp_path, no_docker):
    missing = str(tmp_path / 'no-docs-here')
    failed, result = run_module(kb_build, dict(args, docs=missing))
    assert failed
    assert missing in result['msg'] and 'does not exist' in result['msg']


def test_docs_is_a_file(run_module, args, docs, no_docker):
    failed, result = run_module(kb_build, dict(args, docs=str(docs / 'handbook.md')))
    assert failed
    assert 'is not a directory' in result['msg']


def test_no_supported_documents_lists_extensions(run_module, args, tmp_path, no_docker):
    empty = tmp_path / 'images-only'
    empty.mkdir()
    (empty / 'photo.jpg').write_bytes(b'\xff\xd8')
    failed, result = run_module(kb_build, dict(args, docs=str(empty)))
    assert failed
    assert str(empty) in result['msg']
    for ext in SUPPORTED_EXTENSIONS:
        assert ext in result['msg']
    assert not os.path.exists(args['kb_root'])


@pytest.mark.parametrize('size,overlap', [(100, 100), (100, 150)])
def test_overlap_not_smaller_than_size(run_module, args, size, overlap, no_docker):
    failed, result = run_module(kb_build, dict(args, chunk_size=size, chunk_overlap=overlap))
    assert failed
    assert result['msg'].startswith('chunk_overlap (%d) must be smaller than chunk_size (%d)' % (overlap, size))


@pytest.mark.parametrize('size,overlap,fragment', [(0, 0, 'chunk_size must be at least 1'),
                                                   (100, -1, 'chunk_overlap must not be negative')])
def test_nonsense_chunk_params(run_module, args, size, overlap, fragment, no_docker):
    failed, result = run_module(kb_build, dict(args, chunk_size=size, chunk_overlap=overlap))
    assert failed and fragment in result['msg']


@pytest.mark.parametrize('name', ['../escape', '.hidden', 'a/b'])
def test_name_must_be_plain(run_module, args, name, no_docker):
    failed, result = run_module(kb_build, dict(args, name=name))
    assert failed and 'plain directory name' in result['msg']


def test_symlinked_document_is_refused(run_module, args, docs, no_docker):
    os.symlink('/etc/hostname', str(docs / 'host.txt'))
    failed, result = run_module(kb_build, args)
    assert failed and str(docs / 'host.txt') in result['msg']


# --- check mode and diff -------------------------------------------------------------------------

def test_check_mode_creates_nothing(run_module, args, no_docker):
    failed, result = run_module(kb_build, args, check_mode=True, diff=True)
    assert not failed
    assert result['changed'] is True
    assert result['built'] is False
    assert result['path'] == os.path.join(args['kb_root'], 'handbook', result['version'])
    assert result['checksum'] is None
    assert not os.path.exists(args['kb_root'])
    assert result['diff']['before'] == {'version': None, 'path': None, 'checksum': None}
    assert result['diff']['after'] == {'version': result['version'], 'path': result['path'], 'checksum': None}


def test_existing_version_is_unchanged_without_docker(run_module, args, no_docker):
    path = hand_built_version(args)
    before = fingerprint(path)[0]
    for check_mode in (True, False):
        failed, result = run_module(kb_build, args, check_mode=check_mode, diff=True)
        assert not failed, result['msg']
        assert result['changed'] is False and result['built'] is False
        assert result['path'] == path
        assert result['checksum'] == before
        assert result['manifest']['checksum'] == before
        assert result['chunk_count'] == 1
        assert result['diff']['before'] == result['diff']['after'] == {
            'version': result['version'], 'path': path, 'checksum': before}


def test_tampered_existing_version_fails_and_is_left_alone(run_module, args, no_docker):
    path = hand_built_version(args)
    with open(os.path.join(path, 'chunks.jsonl'), 'a') as handle:
        handle.write('{"id": 1}\n')
    before = fingerprint(path)
    failed, result = run_module(kb_build, args)
    assert failed
    assert path in result['msg'] and 'changed: chunks.jsonl' in result['msg']
    assert fingerprint(path) == before


@pytest.mark.parametrize('given_identity', [True, False])
def test_missing_docker_sdk_reported(run_module, args, monkeypatch, given_identity):
    monkeypatch.setattr(_kb_builder, 'HAS_DOCKER', False)
    monkeypatch.setattr(_kb_builder, 'DOCKER_IMPORT_ERROR', 'ImportError: No module named docker')
    if not given_identity:
        del args['identity']
    failed, result = run_module(kb_build, args)
    assert failed
    assert 'docker' in result['msg'] and 'Python' in result['msg']
    assert not os.path.exists(args['kb_root'])


# --- sealing (finalize) --------------------------------------------------------------------------

def test_finalize_adds_files_and_checksum(args):
    path = hand_built_version(args)
    manifest = json.load(open(os.path.join(path, 'manifest.json')))
    checksum, digests = fingerprint(path)
    assert manifest['files'] == dict(digests)
    assert sorted(manifest['files']) == ['chunks.jsonl', 'index.faiss']
    assert manifest['checksum'] == checksum
    assert [n for n in os.listdir(os.path.dirname(path)) if n.startswith('.tmp-')] == []
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o755)


def test_finalize_keeps_the_winner_of_a_race(args):
    theirs = hand_built_version(args)
    before = fingerprint(theirs)
    version = os.path.basename(theirs)
    ours = make_temp_dir(os.path.dirname(theirs), version)
    with open(os.path.join(ours, 'manifest.json'), 'w') as handle:
        handle.write('{"version": "%s"}' % version)
    manifest, checksum, won = finalize(ours, theirs)
    assert won is False
    assert checksum == before[0]
    assert not os.path.exists(ours)
    assert fingerprint(theirs) == before


# --- builder result parsing ----------------------------------------------------------------------

def test_parse_result_takes_last_json_line():
    out = 'Loading model...\n{"progress": 1}\n{"ok": true, "chunk_count": 3, "doc_count": 1}\n'
    assert _kb_builder.parse_result(out) == {'ok': True, 'chunk_count': 3, 'doc_count': 1}
    assert _kb_builder.parse_result('Traceback...\n') is None


def test_builder_command_follows_contract():
    cmd = _kb_builder.builder_command('handbook', 'abcdef012345', '.tmp-abcdef012345-x', 600, 80,
                                      '/m', 'all-MiniLM-L6-v2', 'embeddings.sqlite')
    assert cmd == ['python', '-m', 'qa_api.kb.build', '--docs', '/in', '--out', '/out/.tmp-abcdef012345-x',
                   '--name', 'handbook', '--version', 'abcdef012345', '--chunk-size', '600',
                   '--chunk-overlap', '80', '--embed-model', '/m', '--embed-name', 'all-MiniLM-L6-v2',
                   '--cache', '/cache/embeddings.sqlite']


@pytest.mark.docker
def test_absent_image_fails_clearly_and_leaves_nothing(run_module, args):
    docker = pytest.importorskip('docker')
    try:
        docker.from_env().ping()
    except Exception as exc:  # pylint: disable=broad-except
        pytest.skip('docker engine not reachable: %s' % exc)
    failed, result = run_module(kb_build, args)
    assert failed
    assert NO_IMAGE in result['msg'] and 'not on this docker host' in result['msg']
    name_dir = os.path.join(args['kb_root'], 'handbook')
    assert [n for n in os.listdir(name_dir) if n != '.cache'] == []


def test_stale_temp_dirs_are_removed_fresh_ones_kept(tmp_path):
    from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_store import remove_stale_temp_dirs
    stale = make_temp_dir(str(tmp_path), 'aaaaaaaaaaaa')
    fresh = make_temp_dir(str(tmp_path), 'bbbbbbbbbbbb')
    version = tmp_path / 'cccccccccccc'
    version.mkdir()
    old = 1000000000
    os.utime(stale, (old, old))
    os.utime(str(version), (old, old))
    assert remove_stale_temp_dirs(str(tmp_path), 3600) == [os.path.basename(stale)]
    assert os.path.isdir(fresh) and version.is_dir()
