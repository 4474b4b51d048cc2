"""Concurrency limits, the bounded inference queue, /health under load and bounded
metrics, against the real app and KB with a stand-in inference server (no model)."""

import re
import threading
import time

import pytest

from tests.conftest import running_app, settings_for
from tests.fake_llm import FakeLLM
from tests.test_client_errors import CHAT, assert_openai_error
from tests.test_app_offline import offline_settings

QUESTION = {"messages": [{"role": "user", "content": "How many days of annual leave?"}]}


# One ready service for the module (loading the embedding model is the slow part), with
# limits every test below can work with: 2 generations per key, 3 inference slots, a
# queue of 1 waiting at most 1.5 s; size limits raised for the expensive-prompt test.
LIMITS = dict(key_concurrency=2, inference_concurrency=3, inference_queue=1,
              inference_queue_timeout=1.5, context_tokens=2048, max_body_bytes=16 << 20,
              max_message_chars=4_000_000, max_total_chars=8_000_000)


@pytest.fixture(scope="module")
def service(corpus_kb):
    fake = FakeLLM().start()
    try:
        with running_app(settings_for(corpus_kb["dir"], llm_base_url=fake.base_url,
                                      **LIMITS)) as client:
            yield client, fake
    finally:
        fake.stop()


@pytest.fixture()
def client(service):
    service[1].reset()
    yield service[0]
    service[1].release.set()


@pytest.fixture()
def llm(service):
    return service[1]


def key(name):
    return {"Authorization": "Bearer sk-test-%s-0123456789abcdef" % name}


class Call(threading.Thread):
    """One chat request in the background (the fake inference holds it)."""

    def __init__(self, client, headers=None, body=None, stream=False):
        super().__init__(daemon=True)
        self.client, self.headers, self.stream = client, headers, stream
        self.body = QUESTION if body is None else body
        self.status = self.text = None
        self.start()

    def run(self):
        body = dict(self.body, stream=self.stream)
        response = self.client.post(CHAT, json=body, headers=self.headers)
        self.status, self.text = response.status_code, response.text

    def result(self, timeout=60):
        self.join(timeout)
        assert not self.is_alive(), "request still running"
        return self.status


def metric(client, name):
    values = re.findall(r"^%s (\S+)$" % re.escape(name), client.get("/metrics").text, re.M)
    return float(values[0]) if values else 0.0


def retry_after(response):
    assert int(response.headers["retry-after"]) >= 1
    return response


def test_per_key_concurrency_is_429_and_other_keys_are_unaffected(client, llm):
    rejected = metric(client, 'qa_rejected_total{reason="key_concurrency"}')
    held = [Call(client, key("a"), stream=True), Call(client, key("a"))]
    llm.wait_calls(2)
    started = time.monotonic()
    refused = retry_after(client.post(CHAT, json=QUESTION, headers=key("a")))
    assert time.monotonic() - started < 1
    error = assert_openai_error(refused, 429)
    assert (error["type"], error["code"]) == ("rate_limit_error", "concurrency_limit_exceeded")
    assert "sk-test" not in refused.text
    other = Call(client, key("b"))  # same address, another key: reaches inference
    llm.wait_calls(3)
    llm.release.set()
    assert [c.result() for c in held + [other]] == [200, 200, 200]
    assert "data: [DONE]" in held[0].text
    # the stream and the answer gave their slots back
    assert client.post(CHAT, json=QUESTION, headers=key("a")).status_code == 200
    assert metric(client, 'qa_rejected_total{reason="key_concurrency"}') == rejected + 1


def test_inference_queue_is_bounded_in_size_and_time(client, llm):
    full_before = metric(client, 'qa_rejected_total{reason="queue_full"}')
    timeout_before = metric(client, 'qa_rejected_total{reason="queue_timeout"}')
    running = [Call(client, key(name)) for name in ("x", "y", "z")]  # the 3 slots
    llm.wait_calls(3)
    queued = Call(client, key("w"))
    deadline = time.monotonic() + 10
    while metric(client, "qa_inference_queue_waiting") != 1.0:
        assert time.monotonic() < deadline, "the fourth request never queued"
        time.sleep(0.05)
    started = time.monotonic()
    full = retry_after(client.post(CHAT, json=QUESTION, headers=key("v")))
    assert time.monotonic() - started < 1
    assert assert_openai_error_5xx(full)["code"] == "server_busy"
    assert queued.result() == 503 and "no inference slot within 2 s" in queued.text
    assert llm.calls == 3
    llm.release.set()
    assert [c.result() for c in running] == [200, 200, 200]
    assert metric(client, 'qa_rejected_total{reason="queue_full"}') == full_before + 1
    assert metric(client, 'qa_rejected_total{reason="queue_timeout"}') == timeout_before + 1
    assert metric(client, "qa_inference_queue_waiting") == 0.0


def assert_openai_error_5xx(response):
    assert response.status_code == 503 and response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_health_stays_fast_while_an_expensive_prompt_is_fitted(client, llm):
    # Fitting 8 turns of 400k CJK characters into 2048 tokens: seconds of pure Python
    # (estimate_tokens per character, again for each dropped turn).
    turn = "出差住宿每晚的报销标准" * 40_000
    history = [{"role": role, "content": turn} for role in ("user", "assistant") * 4]
    body = {"messages": history[1:] + [{"role": "user", "content": "年假有几天？"}]}
    llm.release.set()
    call = Call(client, key("big"), body=body)
    started, slowest = time.monotonic(), 0.0
    while call.is_alive():
        before = time.monotonic()
        assert client.get("/health").status_code == 200
        slowest = max(slowest, time.monotonic() - before)
        time.sleep(0.05)
    took = time.monotonic() - started
    assert call.result() == 200, call.text
    assert took > 1.0, "the request was too cheap to prove anything (%.2fs)" % took
    assert slowest < 1.0, "/health took %.2fs while the prompt was fitted" % slowest


def test_oversized_request_is_refused_fast(corpus_kb):
    with running_app(offline_settings(corpus_kb["dir"]), wanted=("loading",)) as client:
        body = b'{"messages":[{"role":"user","content":"' + b"x" * (10 << 20) + b'"}]}'
        started = time.monotonic()
        assert_openai_error(client.post(CHAT, content=body), 413)
        assert time.monotonic() - started < 1


def test_junk_methods_and_paths_leave_metrics_bounded(corpus_kb):
    with running_app(offline_settings(corpus_kb["dir"]), wanted=("loading",)) as client:
        def junk(start, count):
            for i in range(start, start + count):
                assert_openai_error(client.request("JUNK%d" % i, "/health"))
                assert_openai_error(client.request("GET", "/junk/%d" % i))

        def series():
            return [line for line in client.get("/metrics").text.splitlines()
                    if line and not line.startswith("#")]

        junk(0, 10)
        series()  # /metrics itself is counted from its first call on
        before = series()
        junk(10, 300)
        after = series()
    assert len(after) == len(before)
    assert "JUNK" not in "\n".join(after) and "/junk" not in "\n".join(after)
    assert any('method="other"' in line and 'endpoint="/health"' in line for line in after)
    assert any('endpoint="other"' in line and 'status="404"' in line for line in after)


def test_real_server_answers_junk_methods_with_json_and_keeps_metrics_bounded(tmp_path):
    """Over real HTTP (uvicorn, h11): what a client without a key can send through /health."""
    import os
    import subprocess
    import sys

    import httpx

    from tests.conftest import free_port

    port = free_port()
    env = dict(os.environ, QA_KB_DIR=str(tmp_path / "none"), QA_HOST="127.0.0.1",
               QA_PORT=str(port), QA_LLM_BASE_URL="http://127.0.0.1:%d/v1" % free_port(),
               QA_LOG_LEVEL="ERROR")
    proc = subprocess.Popen([sys.executable, "-m", "qa_api.server"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = "http://127.0.0.1:%d" % port
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    http.get("/health/liveness")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and proc.poll() is None
                    time.sleep(0.2)
            for i in range(200):
                response = http.request("JUNK%d" % i, "/health")
                assert response.status_code == 405 and response.json()["error"]["code"]
            assert "server" not in response.headers  # no software banner
            text = http.get("/metrics").text
    finally:
        proc.terminate()
        proc.wait(30)
    assert "JUNK" not in text
    assert 'qa_requests_total{endpoint="/health",method="other",status="405"} 200.0' in text
