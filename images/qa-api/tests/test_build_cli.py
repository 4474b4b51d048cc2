"""The builder CLI end to end, as kb_build runs it (real model, real FAISS, real SQLite)."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from qa_api.config import default_embed_model
from qa_api.fingerprint import fingerprint_dir, sha256_file
from qa_api.kb.embedder import load_embedder
from qa_api.kb.identity import builder_identity
from qa_api.kb.index import read_index, search
from qa_api.kb.store import KBError, finalize, load_kb, read_manifest
from tests.conftest import EMBED_NAME, run_build
from tests.documents import make_pdf, make_pptx, write_corpus, write_new_types


def read_chunks(kb_dir):
    with open(os.path.join(kb_dir, "chunks.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_build_writes_the_contract_files(corpus_kb):
    kb_dir, docs = corpus_kb["dir"], corpus_kb["docs"]
    manifest = read_manifest(kb_dir)
    assert sorted(os.listdir(kb_dir)) == ["chunks.jsonl", "index.faiss", "lexical.npz", "manifest.json"]
    assert manifest["schema"] == 2 and manifest["name"] == "handbook"
    assert manifest["version"] == "0123456789ab"
    assert [i["path"] for i in manifest["inputs"]] == [
        "expenses.txt", "holidays.docx", "hr/remote.html", "policy.md", "security.pdf"]
    assert {i["path"]: i["type"] for i in manifest["inputs"]}["hr/remote.html"] == "html"
    for item in manifest["inputs"]:
        path = os.path.join(docs, item["path"])
        assert item["sha256"] == sha256_file(path) and item["bytes"] == os.path.getsize(path)
    assert manifest["doc_count"] == 5
    assert manifest["skipped"] == ["notes.xls"]
    assert manifest["splitter"]["chunk_size"] == 600 and manifest["splitter"]["chunk_overlap"] == 80
    # a named model: no "selection" (that is auto's, test_auto_embedding.py)
    assert manifest["embedding"] == {"name": EMBED_NAME, "backend": "sentence-transformers",
                                     "runtime": "onnxruntime", "device": "cpu", "dim": 384,
                                     "normalized": True, "digest": fingerprint_dir(default_embed_model())}
    assert manifest["builder"]["digest"] == builder_identity()["digest"]
    assert manifest["builder"]["libraries"]["faiss-cpu"] and manifest["builder"]["python"]
    assert manifest["index"]["type"] == "faiss.IndexFlatIP"
    assert manifest["index"]["sha256"] == sha256_file(os.path.join(kb_dir, "index.faiss"))
    assert manifest["lexical"]["type"] == "bm25" and manifest["lexical"]["terms"] > 50
    assert manifest["lexical"]["sha256"] == sha256_file(os.path.join(kb_dir, "lexical.npz"))
    assert manifest["created_at"].endswith("Z")
    # kb_build's part, done here by finalize(): files + checksum over the version dir
    assert manifest["checksum"] == fingerprint_dir(kb_dir)
    assert manifest["files"]["chunks.jsonl"] == sha256_file(os.path.join(kb_dir, "chunks.jsonl"))
    assert manifest["files"]["lexical.npz"] == manifest["lexical"]["sha256"]

    chunks = read_chunks(kb_dir)
    assert manifest["chunk_count"] == len(chunks) >= 5
    assert [c["id"] for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert set(chunk) == {"id", "source", "chunk", "heading", "text", "sha256"}
        assert chunk["sha256"] == hashlib.sha256(chunk["text"].encode("utf-8")).hexdigest()
        assert 0 < len(chunk["text"]) <= 600
    assert {c["source"] for c in chunks} == {i["path"] for i in manifest["inputs"]}

    index = read_index(os.path.join(kb_dir, "index.faiss"))
    assert index.ntotal == len(chunks) and index.d == 384
    vectors = index.reconstruct_n(0, index.ntotal)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("question,source", [
    ("How many days of paid annual leave do employees get?", "policy.md"),
    ("How long must a password be?", "security.pdf"),
    ("出差住宿标准是多少？", "expenses.txt"),
    ("Can I work from home?", "hr/remote.html"),
])
def test_retrieval_finds_the_right_document(corpus_kb, question, source):
    embedder = load_embedder(default_embed_model(), EMBED_NAME)
    kb = load_kb(corpus_kb["dir"], read_manifest(corpus_kb["dir"]), fingerprint_dir(corpus_kb["dir"]),
                 EMBED_NAME, embedder.dim)
    hits = search(kb.index, embedder.encode([question])[0], 3)
    assert kb.chunks[hits[0][0]]["source"] == source
    assert hits[0][1] > 0.3 and hits[0][1] >= hits[-1][1]


def test_rebuild_reuses_the_cache_and_gives_identical_bytes(tmp_path):
    docs = write_corpus(str(tmp_path / "docs"))
    cache = tmp_path / "cache" / "embeddings.sqlite"
    run1 = run_build(docs, tmp_path / "v1", cache)
    first = run1.result
    assert run1.code == 0 and len(run1.stdout.splitlines()) == 1
    assert first["ok"] and first["embedded"] == first["chunk_count"] and first["cached"] == 0
    assert first["doc_count"] == 5
    run2 = run_build(docs, tmp_path / "v2", cache)
    second = run2.result
    assert run2.code == 0
    assert second == dict(first, embedded=0, cached=first["chunk_count"])
    for name in ("chunks.jsonl", "index.faiss", "lexical.npz"):
        assert sha256_file(str(tmp_path / "v1" / name)) == sha256_file(str(tmp_path / "v2" / name))
    assert fingerprint_dir(str(tmp_path / "v1")) == fingerprint_dir(str(tmp_path / "v2"))

    # one edited document: only its changed chunk is embedded again
    with open(os.path.join(docs, "policy.md"), "a", encoding="utf-8") as handle:
        handle.write("\nParental leave is 20 weeks.\n")
    run3 = run_build(docs, tmp_path / "v3", cache)
    third = run3.result
    assert run3.code == 0
    policy_chunks = [c for c in read_chunks(str(tmp_path / "v3")) if c["source"] == "policy.md"]
    assert third["embedded"] == 1 == len(policy_chunks)
    assert third["cached"] == third["chunk_count"] - 1

    def others(version):
        return [(c["source"], c["chunk"], c["sha256"]) for c in read_chunks(str(tmp_path / version))
                if c["source"] != "policy.md"]
    assert others("v1") == others("v3")


def test_corrupt_pdf_fails_with_exit_2_naming_the_file(tmp_path):
    docs = write_corpus(str(tmp_path / "docs"))
    with open(os.path.join(docs, "hr", "broken.pdf"), "wb") as handle:
        handle.write(make_pdf(["fine"])[:60])
    run = run_build(docs, tmp_path / "out", tmp_path / "cache.sqlite")
    code, result = run.code, run.result
    assert code == 2
    assert len(run.stdout.splitlines()) == 1
    assert result["ok"] is False and result["file"] == "hr/broken.pdf"
    assert "PDF" in result["error"]


def test_corrupt_docx_fails_naming_the_file(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.md").write_text("# Fine\n\nSome text.\n")
    (docs / "report.docx").write_bytes(b"PK\x03\x04 truncated")
    code, result = run_build(docs, tmp_path / "out", tmp_path / "cache.sqlite")[:2]
    assert code == 2 and result["file"] == "report.docx" and "DOCX" in result["error"]


def test_document_without_text_fails(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "scan.pdf").write_bytes(make_pdf([]))
    code, result = run_build(docs, tmp_path / "out", tmp_path / "cache.sqlite")[:2]
    assert code == 2 and result == {"ok": False, "file": "scan.pdf", "error": (
        "no text extracted: a scanned PDF has no text layer: run OCR on it first (e.g. ocrmypdf), or remove it "
        "from the documents directory")}


def test_no_supported_documents_fails_without_a_file(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "table.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    code, result = run_build(docs, tmp_path / "out", tmp_path / "cache.sqlite")[:2]
    assert code == 2 and result["ok"] is False and result["file"] is None
    assert "no supported documents" in result["error"]


def test_missing_embedding_model_fails_clearly(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("text\n")
    code, result = run_build(docs, tmp_path / "out", tmp_path / "cache.sqlite",
                             embed_model=str(tmp_path / "no-model"))[:2]
    assert code == 2 and "embedding model directory not found" in result["error"]


def test_symlink_in_documents_fails_naming_it(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("text\n")
    os.symlink(str(docs / "a.md"), str(docs / "b.md"))
    code, result = run_build(docs, tmp_path / "out", tmp_path / "cache.sqlite")[:2]
    assert code == 2 and result["file"] == "b.md" and "symlink" in result["error"]


def test_corrupt_cache_is_moved_aside_not_fatal(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Some policy text.\n")
    cache = tmp_path / "embeddings.sqlite"
    cache.write_bytes(b"this is not a sqlite database" * 100)
    run = run_build(docs, tmp_path / "out", cache)
    assert run.code == 0 and run.result["embedded"] == 1
    assert "moved to" in run.stderr
    assert any(p.name.startswith("embeddings.sqlite.corrupt-") for p in tmp_path.iterdir())


def test_tampered_kb_is_refused(corpus_kb, tmp_path):
    kb_dir = str(tmp_path / "kb")
    shutil.copytree(corpus_kb["dir"], kb_dir)
    with open(os.path.join(kb_dir, "chunks.jsonl"), "a", encoding="utf-8") as handle:
        handle.write("\n")
    manifest = read_manifest(kb_dir)
    with pytest.raises(KBError, match="chunks.jsonl changed after build"):
        load_kb(kb_dir, manifest, fingerprint_dir(kb_dir), EMBED_NAME, 384)
    finalize(kb_dir)  # re-finalized: consistent again
    load_kb(kb_dir, read_manifest(kb_dir), fingerprint_dir(kb_dir), EMBED_NAME, 384)


# --- the table, record and zip + XML types, end to end -------------------------------------

@pytest.fixture(scope="module")
def new_types_kb(tmp_path_factory):
    root = tmp_path_factory.mktemp("new-types")
    docs = write_new_types(str(root / "docs"))
    run = run_build(docs, root / "kb", root / "cache.sqlite")
    assert run.code == 0, "builder failed: %s %s" % (run.stdout, run.stderr[-3000:])
    finalize(str(root / "kb"))
    return str(root / "kb")


def test_every_new_type_is_an_input_of_its_type(new_types_kb):
    manifest = read_manifest(new_types_kb)
    assert {i["path"]: i["type"] for i in manifest["inputs"]} == {
        "contract.odt": "odt", "faq.jsonl": "jsonl", "guide.epub": "epub", "ops/runbook.pptx": "pptx",
        "rates.xlsx": "xlsx", "vendors.csv": "csv", "wards.csv": "csv"}
    assert manifest["skipped"] == [] and manifest["builder"]["libraries"]["openpyxl"]
    headings = {c["heading"] for c in read_chunks(new_types_kb)}
    assert {"Slide 1: Incident runbook", "Sheet: Rates", "Chapter 1: Onboarding", "Service contract"} <= headings


# The bundled test embedding model (all-MiniLM-L6-v2) is English-only: its vectors rank Chinese
# text at random, so a Chinese fact must come first in BM25 (Chinese characters and bigrams) and
# among the passages the model is given (top 3); an English fact first in the hybrid ranking.
@pytest.mark.parametrize("question,source,fact", [
    ("How quickly must the on-call engineer be paged for a P1 alert?", "ops/runbook.pptx", "within 15 minutes"),
    ("核心数据库什么时候备份？", "ops/runbook.pptx", "每天凌晨两点全量备份"),
    ("What is the interest rate of the fixed deposit?", "rates.xlsx", "Rate: 2.75%"),
    ("北京分行的电话是多少？", "rates.xlsx", "010-12345678"),
    ("What are the support hours of Acme Storage?", "vendors.csv", "four-hour response time"),
    ("心内科在哪里？", "wards.csv", "门诊楼三层东侧"),
    ("How do I reset my VPN token?", "faq.jsonl", "self-service portal"),
    ("如何申请年假？", "faq.jsonl", "在人事系统提交年假申请"),
    ("When do new staff get their badge?", "guide.epub", "badge from reception"),
    ("离开座位时电脑要怎么办？", "guide.epub", "锁定电脑屏幕"),
    ("How fast does the supplier answer tickets?", "contract.odt", "within two working days"),
    ("逾期交付的违约金怎么算？", "contract.odt", "千分之一"),
])
def test_retrieval_answers_from_each_new_type(new_types_kb, question, source, fact):
    from qa_api.retrieval import Retriever

    embedder = load_embedder(default_embed_model(), EMBED_NAME)
    kb = load_kb(new_types_kb, read_manifest(new_types_kb), fingerprint_dir(new_types_kb), EMBED_NAME, embedder.dim)
    retriever = Retriever(kb, embedder)
    hits = retriever.retrieve(question, 3)  # hybrid, as the service answers
    if question.isascii():
        assert hits[0]["source"] == source and fact in hits[0]["text"], hits
    else:
        best = kb.chunks[retriever.lexical(question, 1)[0][0]]
        assert best["source"] == source and fact in best["text"], best
        assert any(h["source"] == source and fact in h["text"] for h in hits), hits


def test_hostile_new_type_fails_the_build_naming_file_and_fix(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.md").write_text("# Fine\n\nSome text.\n")
    (docs / "import.jsonl").write_text('{"text": "fine"}\n{"text": broken}\n')
    code, result = run_build(docs, tmp_path / "out", tmp_path / "cache.sqlite")[:2]
    assert code == 2 and result["file"] == "import.jsonl"
    assert result["error"].startswith("line 2 is not valid JSON") and "fix or remove that line" in result["error"]
    os.unlink(str(docs / "import.jsonl"))
    make_pptx(docs / "deck.pptx", [("Title", ["text"], None)],
              slide_xml='<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>')
    code, result = run_build(docs, tmp_path / "out", tmp_path / "cache.sqlite")[:2]
    assert code == 2 and result["file"] == "deck.pptx"
    assert result["error"].startswith("refused: the part ppt/slides/slide1.xml declares XML entities")
    assert not (tmp_path / "out").exists()
