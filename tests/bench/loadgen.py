"""Bounded load on the gateway with the official openai SDK, streaming and not.

Every request is recorded with its start and end time, the color the gateway
names in `X-QA-Color` (also on an HTTP error), and for streams whether the last SSE event was
`data: [DONE]`. Traffic goes only to the URL given (127.0.0.1 in every caller);
the workers stop by themselves at `stop()` or after `max_seconds`.
"""
import random
import threading
import time
from dataclasses import dataclass, field

import ssl

import httpx2
from openai import OpenAI

QUESTIONS = [
    "Which UDP port does the WireGuard VPN use?",
    "What are the core working hours?",
    "How many days do employees have to submit an expense claim?",
    "会议室最多可以提前几天预订？",
    "How long must passwords be?",
    "新员工第一天几点报到？",
]


@dataclass
class Result:
    kind: str  # "stream" or "plain"
    start: float
    end: float
    ok: bool
    color: str = ""
    error: str = ""
    truncated: bool = False


@dataclass
class LoadGen:
    base_url: str
    api_key: str
    cacert: str
    model: str = "smollm2-135m-instruct"
    workers: int = 4
    stream_share: float = 0.5
    max_tokens: int = 12
    max_seconds: float = 3600.0
    max_requests: int = 100000
    results: list = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []
        self._count = 0

    def start(self):
        self._deadline = time.monotonic() + self.max_seconds
        for i in range(self.workers):
            kind = "stream" if i < round(self.workers * self.stream_share) else "plain"
            t = threading.Thread(target=self._run, args=(kind, i), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=300)
        return self.results

    def _client(self):
        return OpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0,
                      http_client=httpx2.Client(verify=ssl.create_default_context(cafile=self.cacert), timeout=300))

    def _more(self):
        with self._lock:
            self._count += 1
            return (not self._stop.is_set() and time.monotonic() < self._deadline
                    and self._count <= self.max_requests)

    def _run(self, kind, seed):
        rnd = random.Random(seed)
        client = self._client()
        while self._more():
            # A nonce keeps most requests off the cache so inference is really exercised.
            question = "%s (#%d)" % (rnd.choice(QUESTIONS), rnd.randrange(10**6))
            messages = [{"role": "user", "content": question}]
            start = time.time()
            try:
                if kind == "stream":
                    res = self._stream(client, messages, start)
                else:
                    raw = client.chat.completions.with_raw_response.create(
                        model=self.model, messages=messages, max_tokens=self.max_tokens)
                    reply = raw.parse()
                    ok = bool(reply.choices) and reply.choices[0].message.content is not None
                    res = Result("plain", start, time.time(), ok, raw.headers.get("x-qa-color", ""),
                                 "" if ok else "empty answer")
            except Exception as exc:  # every failure is a data point, never a crash of the load
                # An HTTP error still names the color that answered it (the gateway adds X-QA-Color always).
                response = getattr(exc, "response", None)
                color = response.headers.get("x-qa-color", "") if response is not None else ""
                res = Result(kind, start, time.time(), False, color, error="%s: %s" % (type(exc).__name__, exc))
            with self._lock:
                self.results.append(res)
            if not res.ok:
                time.sleep(0.5)  # a failing gateway is not hammered in a tight loop

    def _stream(self, client, messages, start):
        with client.chat.completions.with_streaming_response.create(
                model=self.model, messages=messages, max_tokens=self.max_tokens, stream=True) as resp:
            color = resp.headers.get("x-qa-color", "")
            events = [line for line in resp.iter_lines() if line.startswith("data:")]
        done = bool(events) and events[-1].strip() == "data: [DONE]"
        return Result("stream", start, time.time(), done, color, "" if done else "stream ended without [DONE]",
                      truncated=not done)


def summarize(results):
    streams = [r for r in results if r.kind == "stream"]
    return {
        "requests_total": len(results),
        "requests_failed": sum(1 for r in results if not r.ok),
        "streams_total": len(streams),
        "streams_truncated": sum(1 for r in streams if r.truncated or not r.ok),
        "errors": sorted({r.error for r in results if r.error})[:5],
    }


def color_violations(results, switches):
    """Requests whose color is neither the one active when they started nor a later one.

    `switches` is a list of (time the new config was live, color) in time order, the
    first entry being the color active before the load began.
    """
    bad = []
    for r in results:
        if not r.ok or not r.color:
            continue
        allowed = {c for t, c in switches if t > r.start}
        active = [c for t, c in switches if t <= r.start]
        if active:
            allowed.add(active[-1])
        if r.color not in allowed:
            bad.append(r)
    return bad
