"""SIGTERM on a real uvicorn process: draining, readiness 503, the open stream completes, exit 0."""

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.conftest import free_port, needs_llm
from tests.sse import parse_sse, stream_text

pytestmark = needs_llm

LONG_QUESTION = ("Write a long, detailed story about an employee who plans her annual leave, "
                 "day by day, for a whole year. Use many paragraphs.")


def start_server(kb_dir, llm_base_url, port, drain_timeout, **more_env):
    env = dict(os.environ, QA_KB_DIR=kb_dir, QA_LLM_BASE_URL=llm_base_url, QA_HOST="127.0.0.1",
               QA_PORT=str(port), QA_COLOR="blue", QA_VERSION="drain-test",
               QA_MAX_TOKENS="400", QA_DRAIN_TIMEOUT=str(drain_timeout),
               QA_LOG_LEVEL="WARNING", **more_env)  # stdout is a pipe read at the end: keep it short
    env.pop("QA_REDIS_HOST", None)  # no cache: the answer must really be generated
    return subprocess.Popen([sys.executable, "-m", "qa_api.server"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_ready(base, proc, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server died: %s" % proc.stdout.read()
        try:
            if httpx.get(base + "/health/readiness", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("server never became ready")


class StreamReader(threading.Thread):
    """Reads one streamed answer, noting when it started and ended."""

    def __init__(self, base, body):
        super().__init__(daemon=True)
        self.base, self.body = base, body
        self.started = threading.Event()
        self.text, self.finished_at, self.error, self.status = "", None, None, None

    def run(self):
        try:
            with httpx.stream("POST", self.base + "/v1/chat/completions", json=self.body,
                              timeout=httpx.Timeout(300, connect=5)) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    self.text += line + "\n\n"
                    # the first event is sent once inference accepted the request; the
                    # prompt evaluation and the generation are still ahead
                    self.started.set()
            self.finished_at = time.monotonic()
        except Exception as exc:  # reported by the test thread
            self.error = exc
        finally:
            self.started.set()


def test_sigterm_drains_the_open_stream_then_exits(corpus_kb, llm_base_url):
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    proc = start_server(corpus_kb["dir"], llm_base_url, port, drain_timeout=600)
    try:
        wait_ready(base, proc)
        reader = StreamReader(base, {"messages": [{"role": "user", "content": LONG_QUESTION}],
                                     "stream": True, "max_tokens": 400, "temperature": 0.8})
        reader.start()
        assert reader.started.wait(120) and reader.error is None, reader.error
        assert reader.finished_at is None, "the answer finished before SIGTERM: nothing to drain"

        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        readiness = httpx.get(base + "/health/readiness", timeout=5)
        health = httpx.get(base + "/health", timeout=5).json()
        assert readiness.status_code == 503
        assert readiness.headers["x-qa-color"] == "blue"
        assert health["status"] == "draining" and health["inflight"] >= 1
        assert proc.poll() is None, "exited with a stream still open"

        reader.join(600)
        assert reader.error is None and reader.status == 200
        assert reader.finished_at > signalled
        events = parse_sse(reader.text)
        assert events[-1] == "[DONE]"
        assert events[-2]["sources"]
        assert stream_text(events).rstrip().splitlines()[-1].startswith("Sources: ")

        assert proc.wait(30) == 0
        log = proc.stdout.read()
        assert "draining 1 in-flight request(s)" in log and "drained after" in log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_drain_timeout_bounds_the_wait(corpus_kb, llm_base_url):
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    proc = start_server(corpus_kb["dir"], llm_base_url, port, drain_timeout=1)
    try:
        wait_ready(base, proc)
        reader = StreamReader(base, {"messages": [{"role": "user", "content": LONG_QUESTION}],
                                     "stream": True, "max_tokens": 400, "temperature": 0.8})
        reader.start()
        assert reader.started.wait(120)
        if reader.finished_at is not None:
            pytest.skip("the model finished its answer before SIGTERM")
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        exited = time.monotonic() - signalled
        # 1 s drain timeout + uvicorn's 5 s graceful shutdown: the process leaves with the stream
        # unfinished (a wall-clock bound alone failed under CI load, where the exit took 15 s).
        reader.join(60)
        # Cut, unless the model happened to end its answer inside the 1 s drain timeout.
        completed = "[DONE]" in reader.text
        assert not completed or reader.finished_at - signalled < 2, \
            "the stream completed: the drain waited %.0f s for it" % exited
        assert "drain timeout" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
