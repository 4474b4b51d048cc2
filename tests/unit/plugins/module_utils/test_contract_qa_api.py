# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection and the qa-api image must compute the same fingerprint and version.

Loads images/qa-api/qa_api/{fingerprint,kb/version,kb/loaders,kb/splitter}.py (stdlib only) by path.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import os

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import fingerprint
from ansible_collections.llmops.bluegreen.plugins.module_utils._kb_version import (
    SEPARATORS,
    SUPPORTED_EXTENSIONS,
    compute_version,
    is_supported,
    splitter_params,
)

QA_API = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'images', 'qa-api', 'qa_api')


def load(rel):
    path = os.path.join(QA_API, *rel.split('/'))
    if not os.path.isfile(path):
        pytest.skip('%s not present' % path)
    spec = importlib.util.spec_from_file_location('qa_api_contract_' + rel.replace('/', '_')[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_same_directory_fingerprint(tmp_path):
    qa = load('fingerprint.py')
    for rel, data in {'a.txt': b'hello\n', 'a-b.txt': b'x', 'a/b.txt': b'world\n', 'manifest.json': b'{}',
                      u'\u4e2d\u6587/\u8bf4\u660e.md': u'\u4f60\u597d'.encode('utf-8')}.items():
        path = tmp_path.joinpath(*rel.split('/'))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert qa.fingerprint_dir(str(tmp_path)) == fingerprint(str(tmp_path))[0]


def test_same_version_and_splitter():
    qa_version = load('kb/version.py')
    splitter = splitter_params(600, 80)
    args = ('f' * 64, splitter, 'all-MiniLM-L6-v2', 'a' * 64, 'b' * 64)
    assert qa_version.compute_version(*args) == compute_version(*args)
    # The contract's test vector (docs/contracts.md "KB version directory").
    empty = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    assert compute_version(empty, splitter, 'all-MiniLM-L6-v2', 'a' * 64, 'b' * 64) == '785608998f02'


def test_same_supported_extensions_and_separators():
    loaders = load('kb/loaders.py')
    assert sorted(loaders.SUPPORTED) == sorted(SUPPORTED_EXTENSIONS)
    for name in ('a.PDF', 'b.Docx', 'c.markdown', 'd.json', 'e', '.md'):
        assert bool(loaders.doc_type(name)) == is_supported(name), name
    splitter = load('kb/splitter.py')
    assert splitter.DEFAULT_SEPARATORS == SEPARATORS


def test_same_auto_keyword_and_bundled_english_model():
    from ansible_collections.llmops.bluegreen.plugins.module_utils import _kb_builder
    models = load('kb/models.py')
    assert models.AUTO == _kb_builder.AUTO
    assert models.ENGLISH == _kb_builder.DEFAULT_EMBEDDING_NAME
    _backend, package, folder = models.BUNDLED[models.ENGLISH]
    assert _kb_builder.DEFAULT_EMBEDDING_MODEL.endswith('/site-packages/%s/%s' % (package, folder))
