import collections
import contextlib
import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from qa_api.config import Settings, default_embed_model
from qa_api.kb.store import finalize
from tests.documents import write_corpus

LLM_BASE_URL = os.environ.get("QA_TEST_LLM_BASE_URL")
REDIS_HOST = os.environ.get("QA_TEST_REDIS_HOST")
REDIS_PORT = int(os.environ.get("QA_TEST_REDIS_PORT", "6379"))
REDIS_PASSWORD = os.environ.get("QA_TEST_REDIS_PASSWORD")
EMBED_NAME = "all-MiniLM-L6-v2"

needs_llm = pytest.mark.skipif(
    not LLM_BASE_URL,
    reason="QA_TEST_LLM_BASE_URL not set: needs a real inference server (run-tests.sh starts one)")
needs_redis = pytest.mark.skipif(
    not REDIS_HOST,
    reason="QA_TEST_REDIS_HOST not set: needs a real Redis (run-tests.sh starts one)")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BuildRun = collections.namedtuple("BuildRun", "code result stdout stderr")


def run_build(docs, out, cache, version="0123456789ab", chunk_size=600, chunk_overlap=80,
              embed_model=None, name="handbook", embed_name=None, timeout=600, extra=()):
    """Run the builder CLI as kb_build does: BuildRun(exit code, parsed JSON line, stdout, stderr).
    embed_model "auto": the builder picks the model (and its name); extra: more CLI options."""
    embed_model = embed_model or default_embed_model()
    embed_name = embed_name or ("auto" if embed_model == "auto" else EMBED_NAME)
    cmd = [sys.executable, "-m", "qa_api.kb.build", "--docs", str(docs), "--out", str(out),
           "--name", name, "--version", version, "--chunk-size", str(chunk_size),
           "--chunk-overlap", str(chunk_overlap),
           "--embed-model", embed_model, "--embed-name", embed_name,
           "--cache", str(cache)] + list(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    lines = proc.stdout.splitlines()
    parsed = json.loads(lines[0]) if len(lines) == 1 else None
    return BuildRun(proc.returncode, parsed, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def corpus_kb(tmp_path_factory):
    """A finalized KB version dir built from the sample corpus by the real CLI."""
    root = tmp_path_factory.mktemp("corpus")
    docs = write_corpus(str(root / "docs"))
    out = root / "kb" / "handbook" / "v1"
    run = run_build(docs, out, root / "cache" / "embeddings.sqlite")
    assert run.code == 0, "builder failed: %s %s" % (run.stdout, run.stderr)
    assert run.result["ok"] is True
    manifest = finalize(str(out))
    return {"dir": str(out), "docs": docs, "manifest": manifest, "root": root}


def settings_for(kb_dir, **overrides):
    values = dict(color="green", version="1.2.3-test", kb_dir=kb_dir,
                  embed_model=default_embed_model(), embed_name=EMBED_NAME,
                  llm_base_url=(LLM_BASE_URL or "http://127.0.0.1:9/v1").rstrip("/"),
                  llm_model="smollm2-135m-instruct", redis_host=None, cache_ttl_single_turn=600,
                  cache_ttl_multi_turn=600,
                  max_tokens=64, top_k=3, drain_timeout=30.0)
    values.update(overrides)
    return Settings(**values)


def wait_status(client, wanted, timeout=180.0):
    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        body = client.get("/health").json()
        if body["status"] in wanted:
            return body
        time.sleep(0.2)
    raise AssertionError("status never became %s: %s" % (wanted, body))


@contextlib.contextmanager
def running_app(settings, wanted=("ready",)):
    from fastapi.testclient import TestClient

    from qa_api.app import create_app

    with TestClient(create_app(settings)) as client:
        wait_status(client, wanted)
        yield client


@pytest.fixture(scope="session")
def llm_base_url():
    """The real inference server, waited for (it may still be loading its model)."""
    if not LLM_BASE_URL:
        pytest.skip("QA_TEST_LLM_BASE_URL not set: needs a real inference server")
    wait = float(os.environ.get("QA_TEST_LLM_WAIT", "300"))
    deadline = time.monotonic() + wait
    last = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(LLM_BASE_URL.rstrip("/") + "/models", timeout=5).status_code == 200:
                return LLM_BASE_URL.rstrip("/")
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(1)
    pytest.fail("inference server %s did not answer /models in %.0fs: %s" % (LLM_BASE_URL, wait, last))


@pytest.fixture()
def redis_password_file(tmp_path):
    if not REDIS_HOST:
        pytest.skip("QA_TEST_REDIS_HOST not set: needs a real Redis")
    if not REDIS_PASSWORD:
        return None
    path = tmp_path / "redis-password"
    path.write_text(REDIS_PASSWORD + "\n")
    return str(path)
