"""Backend faults under load, on a real uvicorn process asked over HTTP from several threads at once:
the first backend is killed (its port closed), then comes back too slow (it
answers after the first-token timeout), then recovers. No client request fails, streaming or
not: a stream that had not started is served by the second backend. The primary's circuit
opens and closes, and /metrics shows it. Both backends are stand-in servers (tests/fake_llm.py):
the faults must be exact and the answers tell which backend served them."""

import threading
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.fake_llm import FakeLLM
from tests.sse import parse_sse, stream_text
from tests.test_drain_live import start_server, wait_ready

PRIMARY, FALLBACK = "served by the primary", "served by the fallback"
COOLDOWN = 2.0
WORKERS = 4


def start_faulty_server(kb_dir, primary, fallback, port):
    return start_server(kb_dir, primary, port, drain_timeout=1, QA_LLM_NAMES="primary", QA_LLM_FALLBACK_URL=fallback,
                        QA_LLM_FALLBACK_NAME="fallback", QA_LLM_ATTEMPTS="3", QA_LLM_RETRY_BACKOFF="0.05",
                        QA_LLM_FIRST_TOKEN_TIMEOUT="1.0", QA_LLM_TIMEOUT="2.0", QA_LLM_COOLDOWN=str(COOLDOWN))


def backend_up(base, name):
    for family in text_string_to_metric_families(httpx.get(base + "/metrics", timeout=5).text):
        for sample in family.samples:
            if sample.name == "qa_inference_backend_up" and sample.labels.get("backend") == name:
                return sample.value
    return None


class Load:
    """WORKERS threads, each alternating a non-streaming and a streaming question until stopped
    (bounded: at most 400 requests each). Records (phase, stream, answer or exception)."""

    def __init__(self, base):
        self.url = base + "/v1/chat/completions"
        self.phase, self.results, self.stop = "ok", [], threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.work, args=(i,), daemon=True) for i in range(WORKERS)]

    def ask(self, stream):
        body = dict(model="smollm2-135m-instruct", stream=stream,
                    messages=[{"role": "user", "content": "How many days of annual leave?"}])
        response = httpx.post(self.url, json=body, timeout=30)
        if response.status_code != 200:
            raise AssertionError("HTTP %d: %s" % (response.status_code, response.text[:300]))
        if not stream:
            return response.json()["choices"][0]["message"]["content"]
        events = parse_sse(response.text)
        errors = [event for event in events if isinstance(event, dict) and "error" in event]
        if errors or not events or events[-1] != "[DONE]":
            raise AssertionError("stream failed: %s" % (errors or events[-3:]))
        return stream_text(events)

    def work(self, index):
        for number in range(400):
            if self.stop.is_set():
                return
            phase, stream = self.phase, (number + index) % 2 == 1
            try:
                outcome = self.ask(stream)
            except Exception as exc:  # judged by the test: every one is a failed client request
                outcome = exc
            with self.lock:
                self.results.append((phase, stream, outcome))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def count(self, phase):
        with self.lock:
            return sum(1 for result in self.results if result[0] == phase)

    def run_phase(self, phase, seconds, at_least):
        self.phase = phase
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or self.count(phase) < at_least:
            assert time.monotonic() < deadline + 60, "only %d requests in phase %s" % (self.count(phase), phase)
            time.sleep(0.1)


def test_no_request_fails_while_the_first_backend_is_killed_then_too_slow(corpus_kb):
    primary = FakeLLM(content=PRIMARY).start()
    fallback = FakeLLM(content=FALLBACK).start()
    for fake in (primary, fallback):
        fake.release.set()
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    proc = start_faulty_server(corpus_kb["dir"], primary.base_url, fallback.base_url, port)
    primary_port = primary.server.server_address[1]
    seen_up = {}
    try:
        wait_ready(base, proc, timeout=120)
        with Load(base) as load:
            load.run_phase("ok", 2, at_least=8)
            # Killed: the port refuses connections.
            primary.stop()
            load.run_phase("killed", 3, at_least=12)
            seen_up["killed"] = backend_up(base, "primary")
            # Back on the same port, but every answer comes after the first-token timeout.
            primary = FakeLLM(mode="hang", content=PRIMARY, port=primary_port).start()
            primary.release.set()
            load.run_phase("slow", COOLDOWN * 2 + 1, at_least=12)
            seen_up["slow"] = backend_up(base, "primary")
            primary.mode = "ok"
            load.run_phase("recovered", COOLDOWN + 2, at_least=8)
            load.run_phase("end", 2, at_least=8)
            seen_up["end"] = backend_up(base, "primary")
        results = list(load.results)
    finally:
        primary.stop()
        fallback.stop()
        proc.terminate()
        proc.wait(30)

    failed = [(phase, stream, repr(outcome)) for phase, stream, outcome in results if isinstance(outcome, Exception)]
    assert not failed, "%d of %d client requests failed: %s" % (len(failed), len(results), failed[:5])
    by_phase = {}
    for phase, stream, answer in results:
        by_phase.setdefault(phase, []).append((stream, answer))
    # A request is counted in the phase it started in: one still inside the primary when it was killed may
    # have been served by the fallback.
    before = [answer[:30] for _s, answer in by_phase["ok"] if not answer.startswith(PRIMARY)]
    assert len(before) <= WORKERS and all(answer.startswith(FALLBACK) for answer in before), before
    for phase in ("killed", "slow"):
        # Served by the fallback, streams included; a request already inside the primary when it died may
        # have been answered there first.
        served = [answer for _s, answer in by_phase[phase] if answer.startswith(FALLBACK)]
        assert len(served) >= len(by_phase[phase]) - WORKERS, (phase, by_phase[phase])
        assert any(stream for stream, answer in by_phase[phase] if answer.startswith(FALLBACK)), phase
        assert all(answer.startswith((PRIMARY, FALLBACK)) for _s, answer in by_phase[phase])
    # The circuit: open while the primary failed, closed again once it answered after the cool-down.
    assert seen_up["killed"] == 0 and seen_up["slow"] == 0, seen_up
    assert seen_up["end"] == 1, seen_up
    assert all(answer.startswith(PRIMARY) for _s, answer in by_phase["end"]), by_phase["end"]
