"""`X-QA-Cache: bypass`: the answer comes from the model, the cache is neither read nor written.

Against a REAL inference server and a REAL Redis (env from run-tests.sh).
"""

import uuid

from tests.conftest import REDIS_HOST, REDIS_PASSWORD, REDIS_PORT, needs_llm, needs_redis, running_app, settings_for
from tests.sse import parse_sse

pytestmark = [needs_llm, needs_redis]
BYPASS = {"X-QA-Cache": "bypass"}


def ask(question, **extra):
    body = {"model": "smollm2-135m-instruct", "temperature": 0, "max_tokens": 24,
            "messages": [{"role": "user", "content": "%s (run %s)" % (question, uuid.uuid4().hex[:8])}]}
    body.update(extra)
    return body


def counter(client, name):
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("%s not in /metrics" % name)


def test_bypass_neither_reads_nor_writes_the_cache(corpus_kb, llm_base_url):
    settings = settings_for(corpus_kb["dir"], llm_base_url=llm_base_url, redis_host=REDIS_HOST,
                            redis_port=REDIS_PORT, redis_password=REDIS_PASSWORD)
    with running_app(settings) as client:
        request = ask("How many days of paid annual leave do employees get?")
        hits, misses = counter(client, "qa_cache_hits_total"), counter(client, "qa_cache_misses_total")

        # Not written: a bypassed answer leaves nothing for the next normal request.
        first = client.post("/v1/chat/completions", json=request, headers=BYPASS)
        assert first.status_code == 200, first.text
        assert first.headers["x-cache"] == "BYPASS"
        assert first.json()["choices"][0]["message"]["content"].rstrip().splitlines()[-1].startswith("Sources: ")
        normal = client.post("/v1/chat/completions", json=request)
        assert normal.headers["x-cache"] == "MISS"
        assert client.post("/v1/chat/completions", json=request).headers["x-cache"] == "HIT"

        # Not read: the entry now exists, a bypass (any case) still goes to the model.
        again = client.post("/v1/chat/completions", json=request, headers={"x-qa-cache": "ByPass"})
        assert again.headers["x-cache"] == "BYPASS"
        # Streams too: they end like any stream and leave no entry behind.
        streamed = ask("What are the core working hours?", stream=True)
        with client.stream("POST", "/v1/chat/completions", json=streamed, headers=BYPASS) as response:
            assert response.headers["x-cache"] == "BYPASS"
            events = parse_sse(response.read().decode("utf-8"))
        assert events[-1] == "[DONE]"

        # Only the normal requests counted (one miss, one hit); bypasses count as neither.
        assert counter(client, "qa_cache_hits_total") == hits + 1
        assert counter(client, "qa_cache_misses_total") == misses + 1
        assert client.post("/v1/chat/completions", json=dict(streamed, stream=False)).headers["x-cache"] == "MISS"

        # Any other value is an ordinary request.
        assert client.post("/v1/chat/completions", json=request,
                           headers={"X-QA-Cache": "no"}).headers["x-cache"] == "HIT"
