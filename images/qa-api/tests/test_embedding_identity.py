"""The KB version covers the embedding model's bytes and the builder code; qa-api refuses another model.

The "new model under the same name" is the bundled model copied with one file changed in a way
that still loads (a newline appended to its config.json).
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from qa_api.config import default_embed_model
from qa_api.fingerprint import fingerprint_dir
from qa_api.kb import identity
from qa_api.kb.store import KBError, read_manifest
from tests.conftest import EMBED_NAME, free_port, run_build, running_app, settings_for
from tests.documents import write_corpus

HEX = set("0123456789abcdef")


def copy_model(dest, edit=False):
    shutil.copytree(default_embed_model(), dest)
    if edit:
        with open(os.path.join(dest, "config.json"), "a", encoding="utf-8") as handle:
            handle.write("\n")
    return str(dest)


@pytest.fixture(scope="session")
def edited_model(tmp_path_factory):
    return copy_model(tmp_path_factory.mktemp("models") / "minilm-edited", edit=True)


def offline(kb_dir, **overrides):
    return settings_for(kb_dir, llm_base_url="http://127.0.0.1:%d/v1" % free_port(), **overrides)


def wait_health(client, statuses, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get("/health").json()
        if body["status"] in statuses:
            return body
        time.sleep(0.2)
    raise AssertionError("status never became %s: %s" % (statuses, body))


# --- python -m qa_api.kb.identity -------------------------------------------------------

def test_identity_cli_is_one_json_line_fast_and_imports_no_torch():
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "qa_api.kb.identity",
                           "--embed-model", default_embed_model()],
                          capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["ok"] is True
    assert len(result["builder_digest"]) == 64 and set(result["builder_digest"]) <= HEX
    assert result["embedding"] == {"path": default_embed_model(),
                                   "digest": fingerprint_dir(default_embed_model())}
    assert result["builder"]["libraries"]["torch"].startswith("2.")
    assert result["builder"]["libraries"]["sentence-transformers"]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    for heavy in ("torch", "sentence_transformers", "transformers", "faiss", "pypdf", "docx", "numpy"):
        assert heavy not in imported, "%s imported by the identity query" % heavy
    print("identity query with model hashing: %.2fs" % elapsed)
    assert elapsed < 20


def test_identity_cli_names_a_missing_model():
    proc = subprocess.run([sys.executable, "-m", "qa_api.kb.identity", "--embed-model", "/no/such/model"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    result = json.loads(proc.stdout)
    assert result["ok"] is False and "/no/such/model" in result["error"]


def test_model_digest_follows_the_bytes_not_the_path(tmp_path, edited_model):
    original = identity.model_digest(default_embed_model())
    assert identity.model_digest(copy_model(tmp_path / "same")) == original
    assert identity.model_digest(edited_model) != original


def test_builder_digest_covers_its_sources_and_libraries(tmp_path, monkeypatch):
    package = os.path.dirname(os.path.dirname(identity.__file__))
    copy = tmp_path / "qa_api"
    shutil.copytree(package, copy)
    first = identity.builder_identity(str(copy))["digest"]
    assert first == identity.builder_identity()["digest"]
    (copy / "kb" / "notes.txt").write_text("not code\n")
    assert identity.builder_identity(str(copy))["digest"] == first
    with open(copy / "kb" / "loaders.py", "a", encoding="utf-8") as handle:
        handle.write("# a fixed loader\n")
    assert identity.builder_identity(str(copy))["digest"] != first
    shutil.rmtree(copy)
    shutil.copytree(package, copy)
    with open(copy / "fingerprint.py", "a", encoding="utf-8") as handle:
        handle.write("\n")
    assert identity.builder_identity(str(copy))["digest"] != first
    versions = identity.library_versions(identity.BUILDER_LIBRARIES)
    monkeypatch.setattr(identity, "library_versions", lambda names: dict(versions, pypdf="99.0"))
    assert identity.builder_identity()["digest"] != first


# --- the builder records what it used -------------------------------------------------------

def test_build_records_model_and_builder_digests_and_never_reuses_another_models_vectors(
        tmp_path, edited_model):
    docs = write_corpus(str(tmp_path / "docs"))
    cache = tmp_path / "cache" / "embeddings.sqlite"
    first = run_build(docs, tmp_path / "v1", cache)
    assert first.code == 0, first.stderr[-2000:]
    second = run_build(docs, tmp_path / "v2", cache, embed_model=edited_model)
    assert second.code == 0, second.stderr[-2000:]
    # Same name, other bytes: nothing comes from the first model's cached vectors.
    assert second.result["cached"] == 0 and second.result["embedded"] == first.result["embedded"]
    old, new = read_manifest(str(tmp_path / "v1")), read_manifest(str(tmp_path / "v2"))
    assert old["schema"] == new["schema"] == 2
    assert old["embedding"]["digest"] == fingerprint_dir(default_embed_model())
    assert new["embedding"]["digest"] == fingerprint_dir(edited_model)
    assert new["embedding"]["name"] == old["embedding"]["name"] == EMBED_NAME
    assert old["builder"]["digest"] == new["builder"]["digest"] == identity.builder_identity()["digest"]
    third = run_build(docs, tmp_path / "v3", cache, embed_model=edited_model)
    assert third.result["cached"] == third.result["chunk_count"] and third.result["embedded"] == 0


# --- qa-api refuses an index of another model -----------------------------------------------

def test_service_refuses_a_kb_embedded_with_another_model(corpus_kb, edited_model):
    built_with = corpus_kb["manifest"]["embedding"]["digest"]
    serving = fingerprint_dir(edited_model)
    assert built_with != serving
    started = time.monotonic()
    with running_app(offline(corpus_kb["dir"], embed_model=edited_model), wanted=("loading", "error")) as client:
        body = wait_health(client, ("error",))
        refused_after = time.monotonic() - started
        message = body["error"]
        assert "embedding model mismatch" in message
        assert built_with in message and serving in message and edited_model in message
        assert "QA_EMBED_MODEL" in message and "rebuild the KB" in message
        assert body["kb"]["version"] == corpus_kb["manifest"]["version"]
        assert body["embedding"]["dim"] is None  # refused before loading the model
        readiness = client.get("/health/readiness")
        assert readiness.status_code == 503 and readiness.json()["status"] == "error"
        chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 503
    print("mismatch refused %.2fs after start" % refused_after)


def test_service_accepts_the_same_model_bytes_at_another_path(corpus_kb, tmp_path):
    same = copy_model(tmp_path / "minilm-copy")
    with running_app(offline(corpus_kb["dir"], embed_model=same), wanted=("loading", "error")) as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = client.get("/health").json()
            if body["error"] or (body["detail"] or "").startswith("waiting for inference"):
                break
            time.sleep(0.2)
        assert body["error"] is None and body["embedding"]["dim"] == 384, body


def test_manifest_of_the_old_schema_is_refused_naming_the_fix(corpus_kb, tmp_path):
    kb_dir = tmp_path / "kb"
    shutil.copytree(corpus_kb["dir"], kb_dir)
    manifest = json.loads((kb_dir / "manifest.json").read_text())
    manifest["schema"] = 1
    del manifest["embedding"]["digest"]
    (kb_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(KBError, match="schema 1.*rebuild the KB with the kb_build"):
        read_manifest(str(kb_dir))
