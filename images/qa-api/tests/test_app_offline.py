"""The service without inference: start-up, health, KB verification, headers, metrics."""

import json
import os
import shutil
import time

from tests.conftest import free_port, running_app, settings_for

NO_LLM = "http://127.0.0.1:%d/v1"


def offline_settings(kb_dir, **overrides):
    return settings_for(kb_dir, llm_base_url=NO_LLM % free_port(), **overrides)


def test_health_answers_loading_at_once_while_inference_is_missing(corpus_kb):
    from fastapi.testclient import TestClient

    from qa_api.app import create_app

    started = time.monotonic()
    with TestClient(create_app(offline_settings(corpus_kb["dir"]))) as client:
        first = client.get("/health")
        assert time.monotonic() - started < 5
        assert first.status_code == 200 and first.json()["status"] == "loading"
        assert client.get("/health/readiness").status_code == 503
        assert client.get("/health/liveness").status_code == 200
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = client.get("/health").json()
            if body["embedding"]["dim"] and "kb" not in (body["detail"] or "kb").split(";")[0] \
                    and body["detail"].startswith("waiting for inference"):
                break
            time.sleep(0.2)
        assert body["status"] == "loading", body
        assert body["detail"].startswith("waiting for inference: GET http://127.0.0.1:")
        assert body["error"] is None
        assert body["kb"]["checksum"] == corpus_kb["manifest"]["checksum"]
        assert body["embedding"] == {"name": "all-MiniLM-L6-v2", "dim": 384}
        chat = client.post("/v1/chat/completions",
                           json={"messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 503 and "not ready" in chat.json()["error"]["message"]
        assert chat.headers["x-qa-color"] == "green"
        metrics = client.get("/metrics").text
        assert "qa_ready 0.0" in metrics


def test_identity_headers_on_every_response(corpus_kb):
    with running_app(offline_settings(corpus_kb["dir"]), wanted=("loading",)) as client:
        for response in (client.get("/health"), client.get("/health/liveness"),
                         client.get("/metrics"), client.get("/v1/models"),
                         client.get("/no/such/path"),
                         client.post("/v1/chat/completions", json={"messages": []})):
            assert response.headers["x-qa-color"] == "green", response.url
            assert response.headers["x-qa-version"] == "1.2.3-test", response.url
        missing = client.get("/no/such/path")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
        bad = client.post("/v1/chat/completions", json={"messages": []})
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
        models = client.get("/v1/models").json()
        assert [m["id"] for m in models["data"]] == ["smollm2-135m-instruct"]


def wait_error(client, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get("/health").json()
        if body["status"] == "error":
            return body
        time.sleep(0.2)
    raise AssertionError("no error status: %s" % body)


def test_checksum_mismatch_is_an_error(corpus_kb, tmp_path):
    kb_dir = str(tmp_path / "kb")
    shutil.copytree(corpus_kb["dir"], kb_dir)
    with open(os.path.join(kb_dir, "planted.txt"), "w") as handle:
        handle.write("a file nobody built\n")
    with running_app(offline_settings(kb_dir), wanted=("loading", "error")) as client:
        body = wait_error(client)
        assert "KB checksum mismatch" in body["error"]
        assert corpus_kb["manifest"]["checksum"] in body["error"]
        assert body["kb"]["checksum"] != corpus_kb["manifest"]["checksum"]
        assert body["kb"]["version"] == corpus_kb["manifest"]["version"]
        assert client.get("/health/readiness").status_code == 503


def test_modified_index_is_an_error(corpus_kb, tmp_path):
    kb_dir = str(tmp_path / "kb")
    shutil.copytree(corpus_kb["dir"], kb_dir)
    with open(os.path.join(kb_dir, "index.faiss"), "r+b") as handle:
        handle.seek(-4, os.SEEK_END)
        handle.write(b"\x00\x00\x80\x3f")
    with running_app(offline_settings(kb_dir), wanted=("loading", "error")) as client:
        assert "index.faiss changed after build" in wait_error(client)["error"]


def test_unfinalized_manifest_is_an_error(corpus_kb, tmp_path):
    kb_dir = str(tmp_path / "kb")
    shutil.copytree(corpus_kb["dir"], kb_dir)
    manifest_path = os.path.join(kb_dir, "manifest.json")
    with open(manifest_path) as handle:
        manifest = json.load(handle)
    del manifest["checksum"]
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle)
    with running_app(offline_settings(kb_dir), wanted=("loading", "error")) as client:
        assert "not finalized by kb_build" in wait_error(client)["error"]


def test_missing_kb_dir_is_an_error(tmp_path):
    with running_app(offline_settings(str(tmp_path / "nothing")), wanted=("loading", "error")) as client:
        body = wait_error(client)
        assert "does not exist" in body["error"] and "QA_KB_DIR" in body["error"]


def test_wrong_embedding_name_is_an_error(corpus_kb):
    settings = offline_settings(corpus_kb["dir"], embed_name="bge-base-zh")
    with running_app(settings, wanted=("loading", "error")) as client:
        assert "QA_EMBED_NAME" in wait_error(client)["error"]
