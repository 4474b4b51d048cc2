# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kb_build: the embedding model's content and the builder's digest in the version, without docker.

The image's identity query and the builder run are replaced by fakes at the container boundary
(``_kb_builder._client`` / ``_kb_builder._run`` / ``_kb_builder.run_builder``); everything else is real.
The real thing (qa-api image, a copied and edited model directory) is in test_kb_build_docker.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils import _kb_builder
from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import fingerprint
from ansible_collections.llmops.bluegreen.plugins.modules import kb_build

BUILDER = 'b' * 64
IN_IMAGE = 'e' * 64


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / 'docs'
    root.mkdir()
    (root / 'handbook.md').write_text('# Handbook\n\nAnnual leave is 25 days.\n')
    return root


@pytest.fixture
def model(tmp_path):
    """A model directory as an operator provides it (the bytes only matter for the digest here)."""
    root = tmp_path / 'bge'
    (root / '1_Pooling').mkdir(parents=True)
    (root / 'config.json').write_text('{"hidden_size": 768}')
    (root / 'modules.json').write_text('[]')
    (root / '1_Pooling' / 'config.json').write_text('{"word_embedding_dimension": 768}')
    (root / 'model.safetensors').write_bytes(b'\x01' * 4096)
    return root


@pytest.fixture
def queries(monkeypatch):
    """Fake image: records what kb_build asks and answers like qa_api.kb.identity."""
    asked = []

    def fake_query(image, embed_model, timeout=300, **confinement):
        asked.append((image, embed_model))
        return {'builder_digest': BUILDER, 'embedding_digest': IN_IMAGE if embed_model else None}

    monkeypatch.setattr(_kb_builder, 'query_identity', fake_query)
    return asked


@pytest.fixture
def args(docs, tmp_path):
    return {'docs': str(docs), 'kb_root': str(tmp_path / 'kb'), 'name': 'handbook', 'builder_image': 'qa:test'}


def check(run_module, args):
    failed, result = run_module(kb_build, args, check_mode=True)
    assert not failed, result['msg']
    return result


def test_identity_only_returns_the_image_model(run_module, queries):
    failed, result = run_module(kb_build, {'builder_image': 'qa:test', 'identity_only': True}, check_mode=True)
    assert not failed, result['msg']
    assert result['changed'] is False
    assert result['identity'] == {'builder_digest': BUILDER, 'embedding_digest': IN_IMAGE}
    assert result['embedding'] == {'name': 'all-MiniLM-L6-v2', 'path': _kb_builder.DEFAULT_EMBEDDING_MODEL,
                                   'host_dir': '', 'digest': IN_IMAGE}
    assert 'version' not in result
    # The model inside the image is hashed by the image.
    assert queries == [('qa:test', _kb_builder.DEFAULT_EMBEDDING_MODEL)]


def test_host_model_dir_is_hashed_on_the_host_and_mounted_path_reported(run_module, args, model, queries):
    result = check(run_module, dict(args, embedding_model_dir=str(model), embedding_name='bge-base-zh'))
    digest = fingerprint(str(model))[0]
    assert result['identity'] == {'builder_digest': BUILDER, 'embedding_digest': digest}
    assert result['embedding'] == {'name': 'bge-base-zh', 'path': '/models/embedding', 'host_dir': str(model),
                                   'digest': digest}
    # Only the builder digest is asked from the image; the host dir is not hashed twice.
    assert queries == [('qa:test', None)]


def test_new_model_bytes_under_the_same_name_give_a_new_version(run_module, args, model, queries):
    with_model = dict(args, embedding_model_dir=str(model), embedding_name='bge-base-zh')
    first = check(run_module, with_model)['version']
    assert check(run_module, with_model)['version'] == first
    with open(str(model / 'config.json'), 'a') as handle:
        handle.write('\n')
    second = check(run_module, with_model)
    assert second['version'] != first
    assert second['embedding']['digest'] == fingerprint(str(model))[0]


def test_identity_given_asks_nothing(run_module, args, model, queries):
    given = {'builder_digest': BUILDER, 'embedding_digest': 'd' * 64}
    result = check(run_module, dict(args, embedding_model_dir=str(model) + '-not-on-this-machine', identity=given))
    assert queries == []
    assert result['identity'] == given and result['embedding']['digest'] == 'd' * 64


@pytest.mark.parametrize('problem,fragment', [
    ('missing', 'does not exist'),
    ('file', 'is not a directory'),
    ('not-a-model', 'no modules.json or config.json'),
    ('symlink', 'cp -rL'),
])
def test_unusable_model_dir_is_refused_before_anything(run_module, args, model, queries, problem, fragment):
    path = model
    if problem == 'missing':
        path = model.parent / 'no-such-model'
    elif problem == 'file':
        path = model / 'config.json'
    elif problem == 'not-a-model':
        os.unlink(str(model / 'config.json'))
        os.unlink(str(model / 'modules.json'))
    else:
        os.symlink(str(model / 'model.safetensors'), str(model / 'pytorch_model.bin'))
    failed, result = run_module(kb_build, dict(args, embedding_model_dir=str(path)))
    assert failed
    assert fragment in result['msg'] and str(path) in result['msg']
    assert queries == [] and not os.path.exists(args['kb_root'])


def test_model_in_image_and_host_dir_are_exclusive(run_module, args, model, queries):
    failed, result = run_module(kb_build, dict(args, embedding_model='/m', embedding_model_dir=str(model)))
    assert failed and 'mutually exclusive' in result['msg']
    assert 'embedding_model' in result['msg'] and 'embedding_model_dir' in result['msg']


def test_docs_required_unless_identity_only(run_module, queries):
    failed, result = run_module(kb_build, {'builder_image': 'qa:test'})
    assert failed and 'identity_only is False' in result['msg'] and 'docs' in result['msg']


def test_malformed_identity_is_refused(run_module, args, queries):
    failed, result = run_module(kb_build, dict(args, identity={'builder_digest': 'abc', 'embedding_digest': 'e' * 64}))
    assert failed and 'identity.builder_digest must be 64' in result['msg']


def test_old_image_without_identity_cli_is_named(run_module, args, monkeypatch):
    monkeypatch.setattr(_kb_builder, '_client', lambda image, timeout: object())
    monkeypatch.setattr(_kb_builder, '_run', lambda *a, **k: (
        1, '', "/opt/venv/bin/python: No module named qa_api.kb.identity\n"))
    failed, result = run_module(kb_build, args, check_mode=True)
    assert failed
    assert 'qa:test has no qa_api.kb.identity' in result['msg'] and 'llmops.bluegreen.images' in result['msg']


def fake_builder(monkeypatch, reported, calls):
    """A builder that writes what the real one writes, reporting the digests ``reported``."""
    def run_builder(**kw):
        calls.append(kw)
        manifest = json.load(open(os.path.join(kw['docs'], '..', 'expected-inputs.json')))
        manifest.update(schema=2, name=kw['name'], version=kw['version'], chunk_count=1, doc_count=1,
                        embedding={'name': kw['embed_name'], 'dim': 4, 'digest': reported['embedding_digest']},
                        builder={'digest': reported['builder_digest']})
        for name, data in (('chunks.jsonl', b'{"id": 0}\n'), ('index.faiss', b'\0' * 16)):
            with open(os.path.join(kw['tmp_dir'], name), 'wb') as handle:
                handle.write(data)
        with open(os.path.join(kw['tmp_dir'], 'manifest.json'), 'w') as handle:
            json.dump(manifest, handle)
        return {'ok': True, 'chunk_count': 1, 'doc_count': 1, 'embedded': 1, 'cached': 0}
    monkeypatch.setattr(_kb_builder, 'run_builder', run_builder)


@pytest.fixture
def expected_inputs(docs):
    from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_version import scan_documents
    with open(str(docs.parent / 'expected-inputs.json'), 'w') as handle:
        json.dump({'inputs': scan_documents(str(docs))[0]}, handle)


def test_host_model_is_mounted_and_a_build_with_its_digest_is_kept(run_module, args, model, queries,
                                                                   expected_inputs, monkeypatch):
    calls = []
    digest = fingerprint(str(model))[0]
    fake_builder(monkeypatch, {'builder_digest': BUILDER, 'embedding_digest': digest}, calls)
    failed, result = run_module(kb_build, dict(args, embedding_model_dir=str(model)))
    assert not failed, result['msg']
    assert result['built'] is True and result['changed'] is True
    assert calls[0]['model_dir'] == os.path.realpath(str(model))
    assert calls[0]['embed_model'] == '/models/embedding'
    assert result['manifest']['embedding']['digest'] == digest


@pytest.mark.parametrize('wrong', ['embedding_digest', 'builder_digest'])
def test_build_reporting_other_digests_is_discarded_old_version_intact(run_module, args, model, queries,
                                                                       expected_inputs, monkeypatch, wrong):
    calls = []
    digest = fingerprint(str(model))[0]
    good = {'builder_digest': BUILDER, 'embedding_digest': digest}
    fake_builder(monkeypatch, good, calls)
    with_model = dict(args, embedding_model_dir=str(model))
    failed, old = run_module(kb_build, with_model)
    assert not failed, old['msg']
    before = fingerprint(old['path'], exclude_manifest=False)
    # The model changes under the same name; the builder (as if the dir changed again mid-run) reports another.
    with open(str(model / 'config.json'), 'a') as handle:
        handle.write('\n')
    fake_builder(monkeypatch, dict(good, **{wrong: 'f' * 64}), calls)
    failed, result = run_module(kb_build, with_model)
    assert failed and result['changed'] is False
    label = 'embedding model digest' if wrong == 'embedding_digest' else 'builder digest'
    assert '%s %s, the version was computed with %s' % (label, 'f' * 64, result['identity'][wrong]) in result['msg']
    assert result['version'] != old['version']
    name_dir = os.path.dirname(old['path'])
    assert sorted(os.listdir(name_dir)) == sorted(['.cache', old['version']])
    assert fingerprint(old['path'], exclude_manifest=False) == before


def test_run_builder_mounts_the_host_model_read_only(monkeypatch, tmp_path):
    seen = {}

    def fake_run(client, image, command, name, volumes, labels, timeout, **confinement):
        seen.update(command=command, volumes=volumes)
        return 0, '{"ok": true, "chunk_count": 1, "doc_count": 1}\n', ''
    monkeypatch.setattr(_kb_builder, '_client', lambda image, timeout: object())
    monkeypatch.setattr(_kb_builder, '_run', fake_run)
    _kb_builder.run_builder(image='qa:test', docs='/d', tmp_dir=str(tmp_path / '.tmp-x'), cache_dir='/c', name='n',
                            version='v', chunk_size=600, chunk_overlap=80, embed_model='/models/embedding',
                            embed_name='bge', timeout=60, cache_file='embeddings.sqlite', model_dir='/srv/bge')
    assert seen['volumes']['/srv/bge'] == {'bind': '/models/embedding', 'mode': 'ro'}
    assert seen['volumes']['/d'] == {'bind': '/in', 'mode': 'ro'}
    assert seen['command'][seen['command'].index('--embed-model') + 1] == '/models/embedding'


def test_identity_command_hashes_only_a_model_in_the_image():
    assert _kb_builder.identity_command(None) == ['python', '-m', 'qa_api.kb.identity']
    assert _kb_builder.identity_command('/opt/m') == ['python', '-m', 'qa_api.kb.identity', '--embed-model', '/opt/m']
