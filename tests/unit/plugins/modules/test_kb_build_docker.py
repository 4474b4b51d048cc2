# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kb_build for real: the builder CLI runs in the qa-api image on the local docker engine.

Image: $LLMOPS_QA_API_IMAGE, default llmops/qa-api:dev. Skipped (with the reason)
only when the docker engine or the image is absent.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import shutil

import pytest

from _docker_fixtures import docker_client_with
from ansible_collections.llmops.bluegreen.plugins.module_utils import _kb_builder
from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import fingerprint
from ansible_collections.llmops.bluegreen.plugins.modules import kb_build, kb_checksum

pytestmark = pytest.mark.docker

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'examples', 'docs')
IMAGE = os.environ.get('LLMOPS_QA_API_IMAGE', 'llmops/qa-api:dev')


def sha256_of(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def tree_state(path):
    """Fingerprint plus every file's mtime: equal only if nothing was rewritten."""
    mtimes = {}
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            mtimes[os.path.relpath(full, path)] = os.stat(full).st_mtime_ns
    return fingerprint(path, exclude_manifest=False), mtimes


def leftovers(name_dir):
    return [n for n in os.listdir(name_dir) if n.startswith('.tmp-')]


@pytest.fixture(scope='module')
def builder_image():
    docker_client_with(IMAGE, 'build images/qa-api or set LLMOPS_QA_API_IMAGE')
    return IMAGE


@pytest.fixture(scope='module')
def first_build(builder_image, run_module, tmp_path_factory):
    base = tmp_path_factory.mktemp('kb-real')
    docs = str(base / 'docs')
    shutil.copytree(EXAMPLES, docs)
    args = {'docs': docs, 'kb_root': str(base / 'kb'), 'name': 'handbook', 'builder_image': builder_image,
            'timeout': 900}
    _failed, predicted = run_module(kb_build, args, check_mode=True)
    failed, result = run_module(kb_build, args, diff=True)
    assert not failed, result['msg']
    return {'args': args, 'result': result, 'predicted': predicted}


def test_build_writes_a_complete_manifest(first_build):
    result, args = first_build['result'], first_build['args']
    assert result['changed'] is True and result['built'] is True
    assert result['version'] == first_build['predicted']['version']
    path = os.path.join(args['kb_root'], 'handbook', result['version'])
    assert result['path'] == path
    assert sorted(os.listdir(path)) == ['chunks.jsonl', 'index.faiss', 'lexical.npz', 'manifest.json']
    manifest = json.load(open(os.path.join(path, 'manifest.json')))
    assert manifest == result['manifest']
    assert manifest['schema'] == 2 and manifest['name'] == 'handbook' and manifest['version'] == result['version']
    assert manifest['created_at'].endswith('Z')
    # inputs: every example document with its sha256
    expected_inputs = sorted(os.listdir(args['docs']))
    assert [i['path'] for i in manifest['inputs']] == expected_inputs
    for item in manifest['inputs']:
        assert item['sha256'] == sha256_of(os.path.join(args['docs'], item['path']))
    assert {i['type'] for i in manifest['inputs']} >= {'md', 'txt', 'html', 'pdf', 'docx'}
    assert manifest['doc_count'] == result['doc_count'] == len(expected_inputs)
    assert manifest['splitter']['name'] == 'recursive_character'
    assert (manifest['splitter']['chunk_size'], manifest['splitter']['chunk_overlap']) == (600, 80)
    assert manifest['embedding'] == {'name': 'all-MiniLM-L6-v2', 'dim': 384, 'normalized': True,
                                     'backend': 'sentence-transformers', 'runtime': 'onnxruntime', 'device': 'cpu',
                                     'digest': result['identity']['embedding_digest']}
    assert manifest['builder']['digest'] == result['identity']['builder_digest']
    assert result['embedding'] == {'name': 'all-MiniLM-L6-v2', 'path': _kb_builder.DEFAULT_EMBEDDING_MODEL,
                                   'host_dir': '', 'digest': result['identity']['embedding_digest']}
    with open(os.path.join(path, 'chunks.jsonl')) as handle:
        chunks = [json.loads(line) for line in handle]
    assert manifest['chunk_count'] == result['chunk_count'] == len(chunks) > len(expected_inputs)
    assert [c['id'] for c in chunks] == list(range(len(chunks)))
    assert any(u'B1' in c['text'] and c['source'] == 'onboarding-guide-zh.docx' for c in chunks)
    assert any('30 days' in c['text'] and c['source'] == 'expense-policy.pdf' for c in chunks)
    assert manifest['index']['sha256'] == sha256_of(os.path.join(path, 'index.faiss'))
    # index.faiss: IndexFlatIP of 384-dim float32 rows, one per chunk
    assert os.path.getsize(os.path.join(path, 'index.faiss')) >= len(chunks) * 384 * 4
    assert manifest['files'] == {'chunks.jsonl': sha256_of(os.path.join(path, 'chunks.jsonl')),
                                 'index.faiss': manifest['index']['sha256'],
                                 'lexical.npz': manifest['lexical']['sha256']}
    assert manifest['checksum'] == result['checksum'] == fingerprint(path)[0]
    # Fresh cache: everything embedded now (identical chunk texts are embedded once).
    assert result['cached'] == 0 and 0 < result['embedded'] <= len(chunks)
    assert result['diff']['before']['version'] is None
    assert result['diff']['after']['version'] == result['version']
    assert leftovers(os.path.dirname(path)) == []


def test_build_verifies_with_kb_checksum(first_build, run_module):
    failed, result = run_module(kb_checksum, {'path': first_build['result']['path'], 'verify': True})
    assert not failed, result['msg']
    assert result['checksum'] == first_build['result']['checksum']


def test_rerun_changes_nothing(first_build, run_module):
    before = tree_state(first_build['result']['path'])
    failed, result = run_module(kb_build, first_build['args'])
    assert not failed, result['msg']
    assert result['changed'] is False and result['built'] is False
    assert result['version'] == first_build['result']['version']
    assert result['checksum'] == first_build['result']['checksum']
    assert tree_state(first_build['result']['path']) == before


def test_edit_one_doc_makes_new_version_and_keeps_old(first_build, run_module):
    args = first_build['args']
    old_path = first_build['result']['path']
    before = tree_state(old_path)
    with open(os.path.join(args['docs'], 'vpn-howto.txt'), 'a') as handle:
        handle.write('\n7. New: the VPN also accepts connections on port 443/tcp as a fallback.\n')
    failed, result = run_module(kb_build, args)
    assert not failed, result['msg']
    assert result['changed'] is True and result['built'] is True
    assert result['version'] != first_build['result']['version']
    assert os.path.dirname(result['path']) == os.path.dirname(old_path)
    assert tree_state(old_path) == before
    # Only the chunks of the edited document are new: the rest comes from the embedding cache.
    assert result['cached'] > 0
    assert result['embedded'] < result['chunk_count']
    assert leftovers(os.path.dirname(old_path)) == []


def test_corrupt_pdf_fails_naming_it_and_leaves_nothing(builder_image, run_module, tmp_path):
    docs = tmp_path / 'docs'
    docs.mkdir()
    (docs / 'ok.md').write_text('# Fine\n\nThis document is fine.\n')
    (docs / 'broken.pdf').write_bytes(b'%PDF-1.4\nthis is not really a pdf\n%%EOF\n')
    kb_root = tmp_path / 'kb'
    args = {'docs': str(docs), 'kb_root': str(kb_root), 'name': 'broken', 'builder_image': builder_image,
            'timeout': 900}
    failed, result = run_module(kb_build, args)
    assert failed
    assert result['changed'] is False
    assert str(docs / 'broken.pdf') in result['msg']
    assert result['file'] == 'broken.pdf'
    name_dir = kb_root / 'broken'
    assert not (name_dir / result['version']).exists()
    assert leftovers(str(name_dir)) == []


def _qa_api_documents():
    """The qa-api tests' document writers (stdlib only for these types), loaded by path."""
    import importlib.util
    path = os.path.join(os.path.dirname(EXAMPLES), '..', 'images', 'qa-api', 'tests', 'documents.py')
    spec = importlib.util.spec_from_file_location('qa_api_test_documents', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_record_and_zip_types_build_as_predicted(builder_image, run_module, tmp_path):
    """pptx, xlsx, csv, jsonl, epub, odt: the version kb_build predicts is the one the builder makes
    (both sides read the same extensions), and a bad JSONL line fails naming the file and the line."""
    docs = _qa_api_documents().write_new_types(str(tmp_path / 'docs'))
    args = {'docs': docs, 'kb_root': str(tmp_path / 'kb'), 'name': 'types', 'builder_image': builder_image,
            'timeout': 900}
    _failed, predicted = run_module(kb_build, args, check_mode=True)
    failed, result = run_module(kb_build, args)
    assert not failed, result['msg']
    assert result['version'] == predicted['version'] and result['skipped'] == []
    assert {i['path']: i['type'] for i in result['manifest']['inputs']} == {
        'contract.odt': 'odt', 'faq.jsonl': 'jsonl', 'guide.epub': 'epub', 'ops/runbook.pptx': 'pptx',
        'rates.xlsx': 'xlsx', 'vendors.csv': 'csv', 'wards.csv': 'csv'}
    with open(os.path.join(docs, 'faq.jsonl'), 'a') as handle:
        handle.write('{"question": "broken\n')
    failed, result = run_module(kb_build, args)
    assert failed and result['file'] == 'faq.jsonl'
    assert 'line 5 is not valid JSON' in result['msg'] and 'fix or remove that line' in result['msg']
