"""Hybrid retrieval: BM25 beside the vectors, fused by reciprocal rank fusion."""

import json
import logging
import os
import shutil

import pytest

from qa_api.config import Settings, default_embed_model
from qa_api.fingerprint import fingerprint_dir
from qa_api.kb import lexical
from qa_api.kb.store import KBError, finalize, lexical_origin, load_kb, read_manifest
from qa_api.retrieval import Retriever, rrf
from tests.bench.corpus import QUESTIONS, answers, recall_at, write_corpus
from tests.conftest import EMBED_NAME, run_build


def test_tokenizer_keeps_identifiers_whole_and_splits_chinese_into_characters_and_pairs():
    terms = lexical.tokenize("运行 pgbackrest restore --delta 检查 /etc/nginx/nginx.conf 与 QA_TOP_K")
    assert {"pgbackrest", "restore", "delta", "qa_top_k"} <= set(terms)
    assert "etc/nginx/nginx.conf" in terms and {"nginx", "conf"} <= set(terms)
    assert ["运", "行", "运行"] == terms[:3]
    assert "检查" in terms and "查与" not in terms  # a space ends a CJK run
    assert lexical.tokenize("Nginx.Conf") == ["nginx.conf", "nginx", "conf"]


def test_full_width_forms_are_the_terms_a_query_types():
    # Chinese documents often write Latin letters and digits full width, with ideographic spaces
    assert lexical.tokenize("ＶＰＮ　使用ＵＤＰ端口５１８２０，配置文件ｗｇ０．ｃｏｎｆ") == \
        lexical.tokenize("VPN 使用UDP端口51820,配置文件wg0.conf")
    assert {"vpn", "udp", "51820", "wg0.conf"} <= set(lexical.tokenize("ＶＰＮ　使用ＵＤＰ端口５１８２０，ｗｇ０．ｃｏｎｆ"))
    index = lexical.build_in_memory(["备份在凌晨两点", "ＶＰＮ使用ＵＤＰ端口５１８２０", "打印机在三楼"])
    assert index.search("vpn udp 51820", 3)[0][0] == 1


def test_rrf_sums_reciprocal_ranks_and_breaks_ties_by_best_rank():
    fused = rrf([["a", "b", "c"], ["c", "a", "d"]], k=60)
    assert [row for row, dummy in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1][1] == pytest.approx(1 / 63 + 1 / 61)
    # equal sums: the row ranked higher somewhere comes first, then the row itself
    assert [row for row, dummy in rrf([["x", "y"], ["y", "x"]])] == ["x", "y"]
    assert [row for row, dummy in rrf([[2], [1]])] == [1, 2]
    assert rrf([[], []]) == []


@pytest.fixture(scope="module")
def bench_kb(tmp_path_factory):
    from qa_api.kb.embedder import load_embedder

    root = tmp_path_factory.mktemp("bilingual")
    out = root / "kb" / "bench" / "v1"
    run = run_build(write_corpus(str(root / "docs")), out, root / "cache.sqlite",
                    chunk_size=200, chunk_overlap=20, name="bench")
    assert run.code == 0, run.stderr
    manifest = finalize(str(out))
    embedder = load_embedder(default_embed_model(), EMBED_NAME)
    kb = load_kb(str(out), manifest, manifest["checksum"], EMBED_NAME, embedder.dim)
    return {"dir": str(out), "manifest": manifest, "embedder": embedder, "kb": kb}


def retriever(bench_kb, mode):
    return Retriever(bench_kb["kb"], bench_kb["embedder"], mode)


def test_lexical_finds_exact_identifiers_and_chinese_terms_that_dense_misses(bench_kb):
    dense, lex, hybrid = (retriever(bench_kb, m) for m in ("dense", "lexical", "hybrid"))
    zh = [q for q in QUESTIONS if q[3] == "zh"]
    missed = [q for q in zh if not any(answers(h, q) for h in dense.retrieve(q[0], 3))]
    assert missed, "the English model found every Chinese answer: the test corpus is too easy"
    for question in missed:
        assert any(answers(h, question) for h in lex.retrieve(question[0], 3)), question
        assert any(answers(h, question) for h in hybrid.retrieve(question[0], 5)), question
    # exact identifiers: the passage holding them ranks first
    for term, source in (("pg-backup.timer", "zh/backup.md"), ("QA_DRAIN_TIMEOUT", "en/qa-api.md"),
                         ("jump.intra.example.cn", "zh/security.md")):
        best = lex.retrieve("where is %s documented?" % term, 1)[0]
        assert best["source"] == source and term in best["text"], (term, best)
    for lang in ("zh", "en"):
        subset = [q for q in QUESTIONS if q[3] == lang]
        assert recall_at(hybrid.retrieve, subset, 5) >= recall_at(dense.retrieve, subset, 5)
    assert recall_at(hybrid.retrieve, zh, 5) > recall_at(dense.retrieve, zh, 5)


def test_modes_and_settings():
    assert Settings.from_env({}).retrieval_mode == "hybrid"
    assert Settings.from_env({"QA_RETRIEVAL_MODE": "Dense"}).retrieval_mode == "dense"
    assert Settings.from_env({"QA_RETRIEVAL_CANDIDATES": "50"}).retrieval_candidates == 50
    with pytest.raises(ValueError, match="QA_RETRIEVAL_MODE must be hybrid, dense or lexical"):
        Settings.from_env({"QA_RETRIEVAL_MODE": "bm25"})
    with pytest.raises(ValueError, match="retrieval mode"):
        Retriever(None, None, "sparse")


def test_chunks_carry_their_heading(bench_kb):
    heads = {(c["source"], c["heading"]) for c in bench_kb["kb"].chunks}
    # a chunk that opens with headings is under the deepest of them
    assert ("zh/backup.md", "数据备份与恢复 > 备份策略") in heads
    assert ("zh/backup.md", "数据备份与恢复") not in heads
    assert ("en/deploy.md", "Deployment guide > Canary") in heads
    assert ("zh/expenses.txt", None) in heads  # plain text has no headings
    hit = retriever(bench_kb, "lexical").retrieve("企业微信 告警群", 1)[0]
    assert hit["heading"] == "数据备份与恢复 > 告警"


def test_the_lexical_index_is_covered_by_the_checksum(bench_kb, tmp_path):
    copy = tmp_path / "kb"
    shutil.copytree(bench_kb["dir"], copy)
    path = copy / lexical.FILE
    # a different (valid) lexical index in place of the built one
    lexical.write_index(["something else entirely"] * bench_kb["manifest"]["chunk_count"], str(path))
    assert fingerprint_dir(str(copy)) != bench_kb["manifest"]["checksum"]
    manifest = read_manifest(str(copy))
    with pytest.raises(KBError, match="lexical.npz changed after build"):
        load_kb(str(copy), manifest, fingerprint_dir(str(copy)), EMBED_NAME, 384)


def test_a_kb_built_before_the_lexical_index_still_serves_hybrid(bench_kb, tmp_path, caplog):
    copy = tmp_path / "kb"
    shutil.copytree(bench_kb["dir"], copy)
    os.unlink(str(copy / lexical.FILE))
    manifest = json.loads((copy / "manifest.json").read_text())
    for key in ("lexical", "files", "checksum"):
        manifest.pop(key)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    old = finalize(str(copy))
    assert lexical.FILE not in old["files"] and old["checksum"] != bench_kb["manifest"]["checksum"]
    with caplog.at_level(logging.WARNING, logger="qa_api.kb"):
        kb = load_kb(str(copy), old, old["checksum"], EMBED_NAME, 384)
    assert "rebuild the KB" in caplog.text
    assert lexical_origin(kb) == "in-memory" and lexical_origin(bench_kb["kb"]) == "stored"
    query = "备份任务由哪个定时器触发？"
    assert kb.lexical.search(query, 5) == bench_kb["kb"].lexical.search(query, 5)


def test_chunks_are_indexed_under_their_heading_path(bench_kb):
    import numpy as np

    from qa_api.kb.store import indexed_text

    kb, embedder = bench_kb["kb"], bench_kb["embedder"]
    row = next(i for i, c in enumerate(kb.chunks) if c["source"] == "zh/backup.md" and c.get("heading")
               and "数据备份与恢复" not in c["text"])
    chunk = kb.chunks[row]
    assert indexed_text(chunk) == chunk["heading"] + "\n" + chunk["text"]
    assert indexed_text(dict(chunk, heading=None)) == chunk["text"]
    stored = kb.index.reconstruct(row)
    assert np.allclose(stored, embedder.encode([indexed_text(chunk)])[0], atol=1e-5)
    assert not np.allclose(stored, embedder.encode([chunk["text"]])[0], atol=1e-3)
    # the heading's words are terms of the chunk for BM25 too ("数据备份与恢复" is only in the title)
    assert "数据备份与恢复" in chunk["heading"]
    assert row in [r for r, _score in kb.lexical.search("数据备份与恢复", 50)]
