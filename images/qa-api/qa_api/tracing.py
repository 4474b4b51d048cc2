"""Where the time of one chat request went: its stages under the gateway's request ID.

Each /v1/chat/completions request gets a RequestTrace (ServiceMiddleware). ChatService
times its stages on it: cache (key and lookup), retrieval, prompt (fitting the passages),
then first_token (from the inference call to the first token of a stream) and generation
(the rest of the answer; the whole call when not streamed). When the response ends:

- one JSON line on the logger ``qa_api.trace`` (request_id, color, status, cache, each
  stage's seconds, ttft_s from arrival to the first token);
- the stages known when the response starts go out as a ``Server-Timing`` header, which the
  gateway writes into its JSON access log beside the same request ID;
- with QA_OTLP_ENDPOINT set, the request and its stages as OpenTelemetry spans over
  OTLP/HTTP (qa_api.otlp), the request ID as attribute ``llmops.request_id``.
"""

import json
import logging
import re
import time
import uuid

log = logging.getLogger("qa_api.trace")
# What the gateway sends ($request_id: 32 hex digits); anything else is replaced, never logged.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_from(headers):
    """``(request_id, generated)``: the caller's X-Request-ID when it is sane, else a new one."""
    given = (headers or {}).get("x-request-id", "")
    if REQUEST_ID.fullmatch(given):
        return given, False
    return uuid.uuid4().hex, True


class RequestTrace:
    """Stage timings of one request (monotonic clock; wall-clock start for the spans)."""

    def __init__(self, request_id, method="POST", path="/v1/chat/completions", generated=False):
        self.request_id = request_id
        self.generated = generated  # made here, not sent by the caller
        self.method = method
        self.path = path
        self.start_ns = time.time_ns()
        self.t0 = time.monotonic()
        self.stages = []  # (name, start, end) in seconds from t0
        self.attributes = {}

    def add(self, name, start, end=None):
        """A stage that ran from ``start`` to ``end`` (time.monotonic values; end: now)."""
        end = time.monotonic() if end is None else end
        self.stages.append((name, start - self.t0, end - self.t0))

    def stage(self, name):
        return _Stage(self, name)

    def elapsed(self):
        return time.monotonic() - self.t0

    def durations(self):
        """Seconds per stage name (a repeated stage, e.g. a retried call, is summed)."""
        found = {}
        for name, start, end in self.stages:
            found[name] = found.get(name, 0.0) + (end - start)
        return found

    def server_timing(self):
        """The Server-Timing header value (milliseconds) for the stages done so far."""
        return ", ".join("%s;dur=%.1f" % (name, seconds * 1000)
                         for name, seconds in self.durations().items())

    def record(self, status, color, release=""):
        """The log record of the finished request (a dict; JSON-serialisable)."""
        first = [end for name, _start, end in self.stages if name == "first_token"]
        record = {"event": "chat", "request_id": self.request_id, "color": color,
                  "status": status, "total_s": round(self.elapsed(), 4),
                  "stages": dict((k, round(v, 4)) for k, v in self.durations().items())}
        if release:
            record["release"] = release[:12]
        if first:
            record["ttft_s"] = round(first[0], 4)
        record.update(self.attributes)
        return record


class _Stage:
    def __init__(self, trace, name):
        self.trace, self.name = trace, name

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.trace.add(self.name, self.start)
        return False


class Tracer:
    """Ends request traces: the log line, and the spans when an OTLP exporter is set."""

    def __init__(self, settings, exporter=None):
        self.color = settings.color
        self.release = settings.release
        self.log_enabled = settings.trace_log
        self.exporter = exporter

    def start(self, headers, method, path):
        request_id, generated = request_id_from(headers)
        return RequestTrace(request_id, method, path, generated)

    def finish(self, trace, status):
        record = trace.record(status, self.color, self.release)
        if self.log_enabled:
            log.info("%s", json.dumps(record, sort_keys=True))
        if self.exporter is not None:
            try:
                self.exporter.export(trace, status)
            except Exception as exc:  # pylint: disable=broad-except  # tracing never fails a request
                log.warning("span export failed: %s", exc)
        return record
