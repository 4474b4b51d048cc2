"""Stage timings of each chat request, against a REAL inference server and a REAL Redis.

One JSON log line per request under its X-Request-ID (cache, retrieval, prompt, first_token,
generation), Server-Timing on the response, and with QA_OTLP_ENDPOINT the same request as
OpenTelemetry spans, received by a local OTLP/HTTP collector (a stdlib HTTP server here
that decodes the protobuf export requests with opentelemetry-proto).
"""

import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qa_api.tracing import RequestTrace, request_id_from
from tests.conftest import REDIS_HOST, REDIS_PASSWORD, REDIS_PORT, needs_llm, needs_redis, running_app, settings_for

RUN = uuid.uuid4().hex[:8]


class Collector:
    """An OTLP/HTTP trace receiver on 127.0.0.1: the spans of every export, decoded."""

    def __init__(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.spans, self.paths = [], []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    resource = dict((a.key, a.value.string_value) for a in resource_spans.resource.attributes)
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            collector.spans.append((resource, span))
                collector.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_request(self, request_id, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [(res, span) for res, span in self.spans if attribute(span, "llmops.request_id") == request_id]
            if any(not span.parent_span_id for dummy, span in found):
                return found
            time.sleep(0.1)
        raise AssertionError("no root span for %s in %d spans" % (request_id, len(self.spans)))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def attribute(span, key):
    for item in span.attributes:
        if item.key == key:
            value = item.value
            return value.string_value or value.int_value or value.bool_value
    return None


def traces(caplog):
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "qa_api.trace"]


def ask(question, **extra):
    return dict({"model": "smollm2-135m-instruct", "max_tokens": 16,
                 "messages": [{"role": "user", "content": "%s (run %s)" % (question, RUN)}]}, **extra)


@pytest.fixture(scope="module")
def collector():
    found = Collector()
    yield found
    found.stop()


@pytest.fixture(scope="module")
def client(corpus_kb, llm_base_url, collector):  # pylint: disable=redefined-outer-name
    if not REDIS_HOST:
        pytest.skip("QA_TEST_REDIS_HOST not set: needs a real Redis")
    settings = settings_for(corpus_kb["dir"], llm_base_url=llm_base_url, redis_host=REDIS_HOST,
                            redis_port=REDIS_PORT, redis_password=REDIS_PASSWORD,
                            otlp_endpoint=collector.url)
    with running_app(settings) as test_client:
        yield test_client


def test_a_hostile_request_id_is_replaced_not_logged():
    for hostile in ("a\nb", "abc\n", "x" * 65, "id with spaces", "\u4e2d\u6587", ""):
        request_id, generated = request_id_from({"x-request-id": hostile})
        assert generated and len(request_id) == 32 and request_id != hostile
    assert request_id_from({"x-request-id": "0f" * 16}) == ("0f" * 16, False)


def test_repeated_stages_add_up_and_become_server_timing():
    trace = RequestTrace("r1")
    trace.add("generation", trace.t0, trace.t0 + 0.25)
    trace.add("generation", trace.t0 + 0.5, trace.t0 + 0.75)
    trace.add("retrieval", trace.t0, trace.t0 + 0.010)
    assert trace.durations() == pytest.approx({"generation": 0.5, "retrieval": 0.010})
    assert trace.server_timing() == "generation;dur=500.0, retrieval;dur=10.0"


@needs_llm
@needs_redis
def test_a_request_logs_its_stages_under_its_id_and_sends_them_as_spans(client, collector, caplog):
    caplog.set_level(logging.INFO, logger="qa_api.trace")
    request_id = uuid.uuid4().hex
    response = client.post("/v1/chat/completions", json=ask("Which port does the VPN use?"),
                           headers={"X-Request-ID": request_id})
    assert response.status_code == 200, response.text
    # What the gateway logs beside its request ID: the stages done when the response started.
    timing = dict(part.strip().split(";dur=") for part in response.headers["server-timing"].split(","))
    assert {"cache", "retrieval", "prompt", "generation"} <= set(timing), timing
    assert "x-request-id" not in response.headers  # the caller's ID is not echoed twice
    (record,) = [t for t in traces(caplog) if t["request_id"] == request_id]
    assert record["status"] == 200 and record["color"] == "green" and record["cache"] == "MISS"
    assert record["stream"] is False
    stages = record["stages"]
    assert set(stages) == {"cache", "retrieval", "prompt", "generation"}, stages
    assert all(v >= 0 for v in stages.values()) and stages["generation"] > stages["cache"]
    assert sum(stages.values()) <= record["total_s"] + 0.01

    spans = collector.of_request(request_id)
    (root,) = [span for dummy, span in spans if not span.parent_span_id]
    children = [span for dummy, span in spans if span.parent_span_id]
    assert root.name == "POST /v1/chat/completions" and attribute(root, "http.response.status_code") == 200
    assert sorted(s.name for s in children) == sorted(stages)
    assert all(s.parent_span_id == root.span_id and s.trace_id == root.trace_id for s in children)
    assert all(root.start_time_unix_nano <= s.start_time_unix_nano <= s.end_time_unix_nano
               <= root.end_time_unix_nano for s in children)
    generation = [s for s in children if s.name == "generation"][0]
    seconds = (generation.end_time_unix_nano - generation.start_time_unix_nano) / 1e9
    assert seconds == pytest.approx(stages["generation"], abs=0.01)
    resource = spans[0][0]
    assert resource["service.name"] == "llmops-qa-api" and resource["llmops.color"] == "green"
    assert collector.paths and all(p == "/v1/traces" for p in collector.paths)


@needs_llm
@needs_redis
def test_a_stream_times_its_first_token_and_a_cache_hit_skips_inference(client, collector, caplog):
    caplog.set_level(logging.INFO, logger="qa_api.trace")
    question = ask("What are the core hours?", stream=True)
    first_id, second_id = uuid.uuid4().hex, uuid.uuid4().hex
    with client.stream("POST", "/v1/chat/completions", json=question, headers={"X-Request-ID": first_id}) as resp:
        assert resp.status_code == 200
        body = "".join(resp.iter_text())
    assert body.rstrip().endswith("data: [DONE]")
    (record,) = [t for t in traces(caplog) if t["request_id"] == first_id]
    stages = {"cache", "retrieval", "prompt", "first_token", "generation"}
    assert record["stream"] is True and set(record["stages"]) == stages, record
    # Arrival to first token covers everything before it.
    before = sum(record["stages"][k] for k in ("cache", "retrieval", "prompt", "first_token"))
    assert before <= record["ttft_s"] + 0.01 <= record["total_s"] + 0.02
    assert {span.name for dummy, span in collector.of_request(first_id)} >= {"first_token", "generation"}

    with client.stream("POST", "/v1/chat/completions", json=question, headers={"X-Request-ID": second_id}) as resp:
        "".join(resp.iter_text())
    (hit,) = [t for t in traces(caplog) if t["request_id"] == second_id]
    assert hit["cache"] == "HIT" and set(hit["stages"]) == {"cache"}, hit


@needs_llm
@needs_redis
def test_an_unreachable_collector_costs_the_request_nothing(corpus_kb, llm_base_url):
    settings = settings_for(corpus_kb["dir"], llm_base_url=llm_base_url, redis_host=REDIS_HOST,
                            redis_port=REDIS_PORT, redis_password=REDIS_PASSWORD,
                            otlp_endpoint="http://127.0.0.1:9", otlp_timeout=1.0)
    with running_app(settings) as unreachable:
        started = time.monotonic()
        response = unreachable.post("/v1/chat/completions", json=ask("Who approves expenses?"))
        assert response.status_code == 200, response.text
        assert "generation" in response.headers["server-timing"]
        assert time.monotonic() - started < 60
