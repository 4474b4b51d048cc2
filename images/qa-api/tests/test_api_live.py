"""The API against a REAL inference server and a REAL Redis (env from run-tests.sh)."""

import time
import uuid

import pytest

from tests.conftest import (REDIS_HOST, REDIS_PASSWORD, REDIS_PORT, free_port, needs_llm, needs_redis,
                            running_app, settings_for)
from tests.sse import parse_sse, stream_text
from tests.tcp_proxy import TcpProxy

pytestmark = needs_llm
RUN = uuid.uuid4().hex[:8]  # Redis outlives one pytest run: keep questions unique to the run


def ask(question, **extra):
    body = {"model": "smollm2-135m-instruct",
            "messages": [{"role": "user", "content": "%s (run %s)" % (question, RUN)}]}
    body.update(extra)
    return body


def assert_cited(content, sources, expected_source=None):
    last_line = content.rstrip("\n").splitlines()[-1]
    assert last_line.startswith("Sources: "), content
    assert sources and all(set(s) == {"source", "chunk", "score", "heading", "text"} and s["text"]
                           for s in sources)
    assert last_line == "Sources: " + ", ".join(dict.fromkeys(s["source"] for s in sources))
    if expected_source:
        assert sources[0]["source"] == expected_source


@pytest.fixture(scope="module")
def client(corpus_kb, llm_base_url):
    if not REDIS_HOST:
        pytest.skip("QA_TEST_REDIS_HOST not set: needs a real Redis")
    settings = settings_for(corpus_kb["dir"], llm_base_url=llm_base_url, redis_host=REDIS_HOST,
                            redis_port=REDIS_PORT, redis_password=REDIS_PASSWORD)
    with running_app(settings) as test_client:
        yield test_client


@needs_redis
def test_health_when_ready(client, corpus_kb):
    body = client.get("/health").json()
    manifest = corpus_kb["manifest"]
    assert body["status"] == "ready" and body["error"] is None
    assert (body["color"], body["version"], body["model"]) == ("green", "1.2.3-test",
                                                               "smollm2-135m-instruct")
    assert body["embedding"] == {"name": "all-MiniLM-L6-v2", "dim": 384}
    assert body["kb"] == {"name": "handbook", "version": manifest["version"],
                          "checksum": manifest["checksum"], "doc_count": 5,
                          "chunk_count": manifest["chunk_count"], "built_at": manifest["created_at"]}
    assert body["cache"] == {"connected": True}
    assert body["inflight"] == 0
    assert client.get("/health/readiness").status_code == 200


@needs_redis
def test_chat_non_streaming_cites_sources_then_hits_the_cache(client):
    request = ask("How many days of paid annual leave do employees get?")
    first = client.post("/v1/chat/completions", json=request)
    assert first.status_code == 200, first.text
    assert first.headers["x-cache"] == "MISS" and first.headers["x-qa-color"] == "green"
    body = first.json()
    assert body["object"] == "chat.completion" and body["model"] == "smollm2-135m-instruct"
    message = body["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert_cited(message["content"], body["sources"], "policy.md")
    assert len(message["content"]) > len("Sources: policy.md")  # the model said something

    # same question, other spacing and case: the normalized request hits the cache
    again = ask("how many  days of PAID annual leave\ndo employees get?")
    second = client.post("/v1/chat/completions", json=again)
    assert second.status_code == 200 and second.headers["x-cache"] == "HIT"
    assert second.json()["choices"][0]["message"]["content"] == message["content"]
    assert second.json()["sources"] == body["sources"]

    # a different max_tokens is a different request
    third = client.post("/v1/chat/completions", json=dict(request, max_tokens=17))
    assert third.headers["x-cache"] == "MISS"


@needs_redis
def test_chat_streaming_ends_with_done_and_sources_then_replays_from_cache(client):
    request = ask("出差住宿标准是多少？", stream=True)
    with client.stream("POST", "/v1/chat/completions", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-cache"] == "MISS"
        assert response.headers["x-qa-version"] == "1.2.3-test"
        events = parse_sse(response.read().decode("utf-8"))
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(e["object"] == "chat.completion.chunk" for e in events[:-1])
    final = events[-2]
    assert final["choices"][0]["finish_reason"] in ("stop", "length")
    text = stream_text(events)
    assert_cited(text, final["sources"], "expenses.txt")
    assert len({e["id"] for e in events[:-1]}) == 1

    with client.stream("POST", "/v1/chat/completions", json=request) as response:
        assert response.headers["x-cache"] == "HIT"
        replay = parse_sse(response.read().decode("utf-8"))
    assert replay[-1] == "[DONE]" and stream_text(replay) == text
    assert replay[-2]["sources"] == final["sources"]

    # the non-streaming form of the same question is served from the same entry
    plain = client.post("/v1/chat/completions", json=dict(request, stream=False))
    assert plain.headers["x-cache"] == "HIT"
    assert plain.json()["choices"][0]["message"]["content"] == text


@needs_redis
def test_metrics_count_requests_cache_and_latency(client):
    client.post("/v1/chat/completions", json=ask("Can I work from home?"))
    client.post("/v1/chat/completions", json=ask("Can I work from home?"))
    text = client.get("/metrics").text
    assert 'qa_requests_total{endpoint="/v1/chat/completions",method="POST",status="200"}' in text
    hits = [line for line in text.splitlines() if line.startswith("qa_cache_hits_total ")]
    assert hits and float(hits[0].split()[1]) >= 1
    assert "qa_cache_misses_total" in text
    assert 'qa_request_duration_seconds_bucket{endpoint="/v1/chat/completions",le="+Inf"}' in text
    assert "qa_inflight_requests 0.0" in text
    assert "qa_ready 1.0" in text
    assert "qa_cache_connected 1.0" in text
    info = [line for line in text.splitlines() if line.startswith("qa_info{")]
    assert len(info) == 1 and 'color="green"' in info[0] and 'kb_version="0123456789ab"' in info[0]


def test_redis_unreachable_means_no_cache_not_an_error(corpus_kb, llm_base_url):
    dead_port = free_port()  # nothing listens there
    settings = settings_for(corpus_kb["dir"], llm_base_url=llm_base_url, redis_host="127.0.0.1",
                            redis_port=dead_port)
    with running_app(settings) as client:
        assert client.get("/health").json()["cache"] == {"connected": False}
        for _attempt in range(2):
            started = time.monotonic()
            response = client.post("/v1/chat/completions",
                                   json=ask("How long must a password be?", max_tokens=16))
            assert response.status_code == 200 and response.headers["x-cache"] == "MISS"
            assert_cited(response.json()["choices"][0]["message"]["content"],
                         response.json()["sources"], "security.pdf")
        assert time.monotonic() - started < 60
        assert client.get("/health/readiness").status_code == 200


@needs_redis
def test_redis_lost_and_back_reconnects(corpus_kb, llm_base_url):
    proxy = TcpProxy(REDIS_HOST, REDIS_PORT).start()
    settings = settings_for(corpus_kb["dir"], llm_base_url=llm_base_url, redis_host="127.0.0.1",
                            redis_port=proxy.port, redis_password=REDIS_PASSWORD)
    try:
        with running_app(settings) as client:
            wait_cache(client, True)
            question = ask("Which holidays is the office closed on?", max_tokens=16)
            assert client.post("/v1/chat/completions", json=question).headers["x-cache"] == "MISS"
            assert client.post("/v1/chat/completions", json=question).headers["x-cache"] == "HIT"

            proxy.stop()  # Redis goes away, connections are cut
            started = time.monotonic()
            response = client.post("/v1/chat/completions", json=question)
            assert response.status_code == 200 and response.headers["x-cache"] == "MISS"
            assert time.monotonic() - started < 60
            wait_cache(client, False)
            assert client.get("/health/readiness").status_code == 200

            proxy.start()  # back on the same port
            wait_cache(client, True)
            assert client.post("/v1/chat/completions", json=question).headers["x-cache"] == "HIT"
    finally:
        proxy.stop()


def wait_cache(client, connected, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/health").json()["cache"]["connected"] is connected:
            return
        time.sleep(0.2)
    raise AssertionError("cache.connected never became %s" % connected)


def test_bad_requests_get_openai_errors(corpus_kb, llm_base_url):
    with running_app(settings_for(corpus_kb["dir"], llm_base_url=llm_base_url)) as client:
        only_system = client.post("/v1/chat/completions",
                                  json={"messages": [{"role": "system", "content": "be brief"}]})
        assert only_system.status_code == 400
        assert "user message" in only_system.json()["error"]["message"]
        wrong_role = client.post("/v1/chat/completions",
                                 json={"messages": [{"role": "robot", "content": "hi"}]})
        assert wrong_role.status_code == 400
        assert wrong_role.json()["error"]["type"] == "invalid_request_error"


def metric(text, name):
    """The value of an unlabelled sample, or of the sum of a metric's labelled samples."""
    values = [float(line.split()[-1]) for line in text.splitlines()
              if line.startswith(name + " ") or line.startswith(name + "{")]
    return sum(values) if values else None


@needs_redis
def test_generation_speed_metrics_from_real_answers(client):
    names = ("qa_time_to_first_token_seconds_count", "qa_time_to_first_token_seconds_sum",
             'qa_completion_tokens_total{mode="complete"}', 'qa_completion_tokens_total{mode="stream"}',
             'qa_generation_tokens_per_second_count{mode="complete"}',
             'qa_generation_tokens_per_second_sum{mode="complete"}')
    before = client.get("/metrics").text
    # Cache bypassed: both answers come from the model, one streamed, one not.
    headers = {"X-QA-Cache": "bypass"}
    with client.stream("POST", "/v1/chat/completions", headers=headers,
                       json=ask("How many days of annual leave?", stream=True, max_tokens=24)) as response:
        assert response.status_code == 200
        events = parse_sse(response.read().decode("utf-8"))
    assert stream_text(events)
    plain = client.post("/v1/chat/completions", headers=headers,
                        json=ask("Can I work from home?", max_tokens=24))
    assert plain.status_code == 200
    completion_tokens = plain.json()["usage"]["completion_tokens"]
    after = client.get("/metrics").text
    grew = dict((name, (metric(after, name) or 0) - (metric(before, name) or 0)) for name in names)
    assert grew["qa_time_to_first_token_seconds_count"] == 1, grew
    assert 0 < grew["qa_time_to_first_token_seconds_sum"] < 300, grew
    assert grew['qa_completion_tokens_total{mode="complete"}'] == completion_tokens > 0, grew
    assert 0 < grew['qa_completion_tokens_total{mode="stream"}'] <= 24, grew
    assert grew['qa_generation_tokens_per_second_count{mode="complete"}'] == 1, grew
    assert grew['qa_generation_tokens_per_second_sum{mode="complete"}'] > 0, grew
