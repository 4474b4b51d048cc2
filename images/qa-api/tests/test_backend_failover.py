"""Inference backends that fail: retries before the first token, failover in order, a
circuit breaker per backend, metrics and /health by backend name. The real app and KB,
with stand-in inference servers (tests/fake_llm.py) as primary and fallback, and the
real llama.cpp as fallback where one runs."""

import json
import re
import time

import pytest

from qa_api.config import Settings
from tests.conftest import needs_llm, running_app, settings_for
from tests.fake_llm import FakeLLM
from tests.sse import parse_sse, stream_text
from tests.test_client_errors import CHAT

QUESTION = {"messages": [{"role": "user", "content": "How many days of annual leave?"}]}
FALLBACK_TEXT = "answer from the fallback"
COOLDOWN = 2.0
FAULTS = dict(llm_names=("primary",), llm_fallback_name="fallback", llm_attempts=3,
              llm_retry_backoff=0.05, llm_first_token_timeout=1.0, llm_timeout=2.0,
              llm_cooldown=COOLDOWN)


@pytest.fixture(scope="module")
def service(corpus_kb):
    primary, fallback = FakeLLM().start(), FakeLLM(content=FALLBACK_TEXT).start()
    try:
        settings = settings_for(corpus_kb["dir"], llm_base_url=primary.base_url,
                                llm_fallback_url=fallback.base_url, **FAULTS)
        with running_app(settings) as client:
            yield client, primary, fallback
    finally:
        primary.stop()
        fallback.stop()


@pytest.fixture()
def fakes(service):
    """(client, primary, fallback): both answering at once, counts from zero, circuits closed."""
    client, primary, fallback = service
    for fake in (primary, fallback):
        fake.reset()
        fake.mode = "ok"
        fake.release.set()
    for breaker in client.app.state.chat.inference.breakers:
        breaker.open_until, breaker.failures = 0.0, 0
    return service


def metric(client, name, **labels):
    """The value of one sample of /metrics (0 when absent)."""
    text = client.get("/metrics").text
    want = ",".join('%s="%s"' % item for item in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^%s(?:\{([^}]*)\})? (\S+)$" % re.escape(name), line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == want:
            return float(match.group(2))
    return 0.0


def ask(client, stream=False):
    response = client.post(CHAT, json=dict(QUESTION, stream=stream))
    return response, (parse_sse(response.text) if stream and response.status_code == 200 else None)


@pytest.mark.parametrize("fault,reason", [("500", "http_5xx"), ("close", "protocol"),
                                          ("hang", "timeout")])
def test_non_streaming_fails_over_to_the_fallback(fakes, fault, reason):
    client, primary, fallback = fakes
    primary.mode = fault
    before = metric(client, "qa_inference_failures_total", backend="primary", reason=reason)
    moved = metric(client, "qa_inference_failover_total", from_backend="primary",
                   to_backend="fallback")
    response, dummy = ask(client)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"].startswith(FALLBACK_TEXT)
    assert (primary.calls, fallback.calls) == (1, 1)
    assert metric(client, "qa_inference_failures_total", backend="primary",
                  reason=reason) == before + 1
    assert metric(client, "qa_inference_failover_total", from_backend="primary",
                  to_backend="fallback") == moved + 1


@pytest.mark.parametrize("fault", ["500", "close", "hang", "hang_stream"])
def test_a_stream_that_never_started_is_served_by_the_fallback_once(fakes, fault):
    client, primary, fallback = fakes
    primary.mode = fault
    started = time.monotonic()
    response, events = ask(client, stream=True)
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 2.0 + 1.5  # the first-token timeout, not llm_timeout
    assert events[-1] == "[DONE]"
    assert not any(isinstance(e, dict) and "error" in e for e in events), events
    text = stream_text(events)
    assert text.startswith(FALLBACK_TEXT) and text.count(FALLBACK_TEXT) == 1, text
    assert (primary.calls, fallback.calls) == (1, 1)


def test_a_stream_that_broke_after_its_first_token_is_not_retried(fakes):
    client, primary, fallback = fakes
    primary.mode = "midstream"
    before = metric(client, "qa_inference_failures_total", backend="primary", reason="stream")
    response, events = ask(client, stream=True)
    assert response.status_code == 200
    assert stream_text(events) == "partial"  # no second answer glued after it
    errors = [e for e in events if isinstance(e, dict) and "error" in e]
    assert len(errors) == 1 and events[-1] == "[DONE]", events
    assert (primary.calls, fallback.calls) == (1, 0)
    assert metric(client, "qa_inference_failures_total", backend="primary",
                  reason="stream") == before + 1


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_error_of_the_model_server_is_not_retried(fakes, stream):
    client, primary, fallback = fakes
    primary.mode = "400"
    response, dummy = ask(client, stream=stream)
    assert response.status_code == 502 and "400" in response.json()["error"]["message"]
    assert (primary.calls, fallback.calls) == (1, 0)
    health = client.get("/health").json()["inference"]["backends"]
    assert health[0]["circuit"] == "closed"  # it answered: not a dead backend


def test_a_single_failing_backend_is_retried_with_backoff_and_gives_up(fakes):
    client, primary, fallback = fakes
    primary.mode = fallback.mode = "500"
    response, dummy = ask(client)
    assert response.status_code == 502
    body = response.json()["error"]["message"]
    assert "3 attempt" in body and "127.0.0.1" not in body, body
    assert primary.calls + fallback.calls == 3  # llm_attempts, not more


def test_the_circuit_skips_a_dead_primary_for_the_cool_down(fakes):
    client, primary, fallback = fakes
    primary.mode = "500"
    assert ask(client)[0].status_code == 200
    opened = time.monotonic()
    assert (primary.calls, fallback.calls) == (1, 1)
    for dummy in range(3):
        assert ask(client)[0].status_code == 200
        assert ask(client, stream=True)[0].status_code == 200
    assert time.monotonic() - opened < COOLDOWN, "too slow to test the cool-down"
    assert (primary.calls, fallback.calls) == (1, 7)  # skipped, not asked and failed
    health = client.get("/health").json()
    assert [(b["name"], b["circuit"]) for b in health["inference"]["backends"]] == [
        ("primary", "open"), ("fallback", "closed")]
    assert health["status"] == "ready"
    assert metric(client, "qa_inference_backend_up", backend="primary") == 0
    assert metric(client, "qa_inference_backend_up", backend="fallback") == 1

    primary.mode = "ok"
    time.sleep(max(0.0, opened + COOLDOWN + 0.1 - time.monotonic()))
    response, dummy = ask(client)  # half-open: the primary is tried again, and answers
    assert response.json()["choices"][0]["message"]["content"].startswith("ok")
    assert (primary.calls, fallback.calls) == (2, 7)
    assert client.get("/health").json()["inference"]["backends"][0]["circuit"] == "closed"
    assert metric(client, "qa_inference_backend_up", backend="primary") == 1


def test_health_and_metrics_name_backends_never_their_urls(fakes):
    client, primary, fallback = fakes
    primary.mode = "500"
    ask(client)
    backends = client.get("/health").json()["inference"]["backends"]
    assert [b["name"] for b in backends] == ["primary", "fallback"]
    assert "127.0.0.1" not in json.dumps(backends)
    lines = [line for line in client.get("/metrics").text.splitlines()
             if line.startswith("qa_inference_")]
    assert lines and not any("127.0.0.1" in line or "://" in line for line in lines), lines


def test_ready_while_one_backend_answers(corpus_kb):
    fallback = FakeLLM(content=FALLBACK_TEXT).start()
    fallback.release.set()
    try:
        settings = settings_for(corpus_kb["dir"], llm_base_url="http://127.0.0.1:9/v1",
                                llm_fallback_url=fallback.base_url, **FAULTS)
        with running_app(settings) as client:  # waits for "ready": the primary never listens
            backends = client.get("/health").json()["inference"]["backends"]
            assert [b["answering"] for b in backends] == [False, True]
            response, dummy = ask(client)
            assert response.status_code == 200 and fallback.calls == 1
    finally:
        fallback.stop()


@needs_llm
def test_the_real_model_takes_over_from_a_failing_primary(corpus_kb, llm_base_url):
    primary = FakeLLM(mode="500").start()
    primary.release.set()
    try:
        slow_model = dict(FAULTS)
        slow_model.update(llm_timeout=120.0, llm_first_token_timeout=60.0)
        settings = settings_for(corpus_kb["dir"], llm_base_url=primary.base_url,
                                llm_fallback_url=llm_base_url, **slow_model)
        with running_app(settings) as client:
            response, dummy = ask(client)
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["message"]["content"].strip()
            primary.mode = "close"
            for breaker in client.app.state.chat.inference.breakers:
                breaker.open_until = 0.0
            response, events = ask(client, stream=True)
            assert response.status_code == 200 and events[-1] == "[DONE]"
            assert stream_text(events).strip()
            assert not any(isinstance(e, dict) and "error" in e for e in events)
            assert primary.calls == 2
            assert metric(client, "qa_inference_failover_total", from_backend="primary",
                          to_backend="fallback") == 2
    finally:
        primary.stop()


def test_settings_list_backends_with_names_models_and_keys(tmp_path):
    key = tmp_path / "provider-key"
    key.write_text("sk-provider-secret\n")
    settings = Settings.from_env({
        "QA_LLM_BASE_URLS": "http://llm-a:8000/v1/, http://llm-b:8000/v1",
        "QA_LLM_NAMES": "a", "QA_LLM_MODEL": "smollm2",
        "QA_LLM_FALLBACK_URL": "https://provider.example/v1", "QA_LLM_FALLBACK_MODEL": "gpt-x",
        "QA_LLM_FALLBACK_API_KEY_FILE": str(key), "QA_LLM_ATTEMPTS": "4",
        "QA_LLM_COOLDOWN": "10"})
    backends = settings.backends()
    assert [(b.name, b.base_url, b.model) for b in backends] == [
        ("a", "http://llm-a:8000/v1", "smollm2"), ("backend1", "http://llm-b:8000/v1", "smollm2"),
        ("fallback", "https://provider.example/v1", "gpt-x")]
    assert backends[2].api_key == "sk-provider-secret" and backends[0].api_key is None
    assert settings.llm_base_url == "http://llm-a:8000/v1"
    assert (settings.llm_attempts, settings.llm_cooldown) == (4, 10.0)
    assert "sk-provider-secret" not in repr(settings) + repr(backends)
    with pytest.raises(ValueError, match="names must differ"):
        Settings.from_env({"QA_LLM_FALLBACK_URL": "http://x/v1", "QA_LLM_NAMES": "fallback"})
    with pytest.raises(ValueError, match="QA_LLM_ATTEMPTS"):
        Settings.from_env({"QA_LLM_ATTEMPTS": "0"})
