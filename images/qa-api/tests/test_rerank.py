"""The optional cross-encoder reranker: wiring and ordering mechanics, not ranking quality.

No pretrained cross-encoder can be obtained here, so the folder the tests load is built from
the bundled all-MiniLM-L6-v2 body with a classification head of seeded random weights, saved
by sentence-transformers as any CrossEncoder folder is. Its scores mean nothing about
relevance; what is tested is that the service loads such a folder offline, refuses what is
not one (naming path and fix), rescores the fused candidates, returns them in its order, cut
to top_k, and reports the model's digest and its time.
"""

import json
import os
import shutil
import time

import pytest

from qa_api.config import Settings, default_embed_model
from qa_api.fingerprint import fingerprint_dir
from qa_api.rerank import RerankError, check_folder, load_reranker, passage_text, reorder
from qa_api.retrieval import Retriever
from tests.conftest import running_app, settings_for
from tests.test_app_offline import offline_settings

SEED = 1234


@pytest.fixture(scope="session")
def cross_encoder_dir(tmp_path_factory):
    """A real CrossEncoder folder: MiniLM body + seeded head, saved by sentence-transformers."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(SEED)
    model = CrossEncoder(default_embed_model(), num_labels=1, device="cpu", local_files_only=True)
    path = str(tmp_path_factory.mktemp("rerank") / "seeded-minilm-cross-encoder")
    model.save(path)
    return path


def hit(row, score, text, heading=None):
    return {"id": row, "source": "d%d.md" % row, "chunk": 0, "heading": heading, "score": score, "text": text}


def test_reorder_follows_the_scores_keeps_fused_order_on_ties_and_cuts_to_top_k():
    hits = [hit(0, 0.03, "a"), hit(1, 0.02, "b"), hit(2, 0.01, "c"), hit(3, 0.005, "d")]
    ranked = reorder(hits, [0.1, 0.9, 0.5, 0.9], 3)
    assert [h["id"] for h in ranked] == [1, 3, 2]
    assert [h["score"] for h in ranked] == [0.9, 0.9, 0.5]
    assert [h["fused_score"] for h in ranked] == [0.02, 0.005, 0.01]
    assert ranked[0]["text"] == "b" and hits[1]["score"] == 0.02  # the input is not changed
    with pytest.raises(RerankError, match="2 scores for 4 passages"):
        reorder(hits, [0.1, 0.2], 2)


def test_the_cross_encoder_reads_the_heading_with_the_passage():
    assert passage_text(hit(0, 0, "UDP 51820", "VPN > Ports")) == "VPN > Ports\nUDP 51820"
    assert passage_text(hit(0, 0, "UDP 51820")) == "UDP 51820"


def test_a_missing_or_wrong_folder_is_refused_naming_path_and_fix(tmp_path, cross_encoder_dir):
    with pytest.raises(RerankError, match=r"reranker model folder not found: '/nope'.*QA_RERANK_MODEL"):
        check_folder("/nope")
    with pytest.raises(RerankError, match="%s has no config.json" % tmp_path):
        check_folder(str(tmp_path))
    # the embedding model itself: a BertModel would get a random head and rank at random
    with pytest.raises(RerankError, match=r"is not a cross-encoder: config.json architectures \['BertModel'\]"):
        check_folder(default_embed_model())
    no_weights = tmp_path / "no-weights"
    shutil.copytree(cross_encoder_dir, no_weights)
    os.remove(no_weights / "model.safetensors")
    with pytest.raises(RerankError, match="no-weights has no weights .*qa_service_rerank_model_dir"):
        load_reranker(str(no_weights))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(RerankError, match="cannot read .*broken/config.json"):
        check_folder(str(broken))


def test_settings_read_the_reranker_from_the_environment():
    env = {"QA_RERANK_MODEL": " /models/rerank ", "QA_RERANK_CANDIDATES": "12", "QA_RERANK_MAX_LENGTH": "128"}
    settings = Settings.from_env(env)
    assert (settings.rerank_model, settings.rerank_candidates, settings.rerank_max_length) == (
        "/models/rerank", 12, 128)
    assert Settings.from_env({}).rerank_model == ""  # off by default
    with pytest.raises(ValueError, match="QA_RERANK_CANDIDATES must be >= 1"):
        Settings.from_env({"QA_RERANK_CANDIDATES": "0"})


def test_the_seeded_folder_loads_offline_with_its_digest_and_scores_deterministically(cross_encoder_dir):
    reranker = load_reranker(cross_encoder_dir, candidates=8)
    assert reranker.digest == fingerprint_dir(cross_encoder_dir)
    assert reranker.describe() == {"model": cross_encoder_dir, "digest": reranker.digest, "candidates": 8}
    texts = ["The VPN listens on UDP 51820.", "Lunch is served at noon.", "Backups run nightly."]
    first = reranker.score("Which port does the VPN use?", texts)
    assert len(first) == 3 and len(set(first)) == 3
    assert reranker.score("Which port does the VPN use?", texts) == first
    assert load_reranker(cross_encoder_dir).score("Which port does the VPN use?", texts) == pytest.approx(first)


def loaded(client, timeout=180):
    """/health once the KB (and the reranker) are loaded or failed; inference stays missing."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get("/health").json()
        if body["error"] or (body["detail"] or "").startswith("waiting for inference"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


class Recording:
    """The real reranker, recording what it was asked (how many candidates)."""

    def __init__(self, reranker):
        self.inner = reranker
        self.candidates = reranker.candidates
        self.asked = []

    def rerank(self, query, hits, top_k):
        self.asked.append([h["id"] for h in hits])
        return self.inner.rerank(query, hits, top_k)


def test_the_retriever_rescores_the_fused_candidates_and_returns_the_top_k_in_its_order(
        corpus_kb, cross_encoder_dir):
    from qa_api.kb.embedder import load_embedder
    from qa_api.kb.store import load_kb

    manifest = corpus_kb["manifest"]
    embedder = load_embedder(default_embed_model(), "all-MiniLM-L6-v2")
    kb = load_kb(corpus_kb["dir"], manifest, manifest["checksum"], "all-MiniLM-L6-v2", embedder.dim)
    query = "Which port does the VPN use?"
    plain = Retriever(kb, embedder, "hybrid", 20)
    fused = plain.retrieve(query, 6)
    timings = []
    recording = Recording(load_reranker(cross_encoder_dir, candidates=6))
    reranked = Retriever(kb, embedder, "hybrid", 20, recording, timings.append).retrieve(query, 2)
    # it read the 6 best fused candidates (not only the top_k) and told its time once
    assert recording.asked == [[h["id"] for h in fused]]
    assert len(timings) == 1 and timings[0] > 0
    # what came back is the candidates in the cross-encoder's own order, cut to top_k
    scores = recording.inner.score(query, [passage_text(h) for h in fused])
    expected = sorted(range(len(fused)), key=lambda i: (-scores[i], i))[:2]
    assert [h["id"] for h in reranked] == [fused[i]["id"] for i in expected]
    assert [h["fused_score"] for h in reranked] == [fused[i]["score"] for i in expected]
    # top_k above the reranker's depth: it reads top_k candidates (here every chunk there is)
    everything = Retriever(kb, embedder, "hybrid", 20, recording).retrieve(query, 9)
    assert len(recording.asked[-1]) == len(everything) == min(9, len(kb.chunks))


def test_the_service_loads_the_reranker_reports_its_digest_and_times_it(corpus_kb, cross_encoder_dir):
    settings = offline_settings(corpus_kb["dir"], rerank_model=cross_encoder_dir, rerank_candidates=5)
    with running_app(settings, wanted=("loading", "error")) as client:
        body = loaded(client)
        assert body["error"] is None, body
        assert body["retrieval"]["rerank"] == {"model": cross_encoder_dir, "digest": fingerprint_dir(cross_encoder_dir),
                                               "candidates": 5}
        service = client.app.state.service
        hits = service.retriever.retrieve("Which port does the VPN use?", 3)
        assert len(hits) == 3 and all("fused_score" in h for h in hits)
        metrics = client.get("/metrics").text
        assert "qa_rerank_duration_seconds_count 1.0" in metrics


def test_a_bad_reranker_folder_keeps_the_service_out_of_ready_naming_it(corpus_kb, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with running_app(offline_settings(corpus_kb["dir"], rerank_model=str(tmp_path)), wanted=("error",)) as client:
        body = client.get("/health").json()
        assert "is not a cross-encoder" in body["error"] and str(tmp_path) in body["error"]
        assert client.get("/health/readiness").status_code == 503


def test_without_a_reranker_health_says_none(corpus_kb):
    with running_app(settings_for(corpus_kb["dir"], llm_base_url="http://127.0.0.1:9/v1"),
                     wanted=("loading",)) as client:
        body = loaded(client)
        assert body["error"] is None and body["retrieval"]["rerank"] is None
