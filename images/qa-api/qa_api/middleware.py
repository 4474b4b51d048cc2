"""ASGI middleware: identity headers on every response, in-flight tracking, metrics, and the
stage timings of each chat request (qa_api.tracing).

Pure ASGI (not BaseHTTPMiddleware) so a streamed body counts as in flight
until its last byte is sent: that is what SIGTERM draining waits for.
"""

import time

from qa_api.inference_metrics import PATH as INFERENCE_METRICS

KNOWN = {"/v1/chat/completions", "/v1/models", "/health", "/health/readiness",
         "/health/liveness", "/metrics", INFERENCE_METRICS}
# Probes and scrapes: not in flight (draining does not wait for them). Counted under their own
# endpoint, which the SLO (endpoint=~"/v1/.*") does not read.
UNTRACKED = {"/health", "/health/readiness", "/health/liveness", "/metrics", INFERENCE_METRICS}
TRACED = {"/v1/chat/completions"}
# Metric labels come from fixed sets: any junk method or path costs nothing to remember.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class ServiceMiddleware:
    def __init__(self, app, settings, state, metrics, tracer=None):
        self.app = app
        self.tracer = tracer
        self.state = state
        self.metrics = metrics
        self.identity = [(b"x-qa-color", settings.color.encode("latin-1")),
                         (b"x-qa-version", settings.version.encode("latin-1"))]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = path if path in KNOWN else "other"
        method = scope["method"] if scope["method"] in METHODS else "other"
        tracked = path not in UNTRACKED
        status = [500]
        trace = None
        if self.tracer is not None and path in TRACED:
            headers = dict((k.decode("latin-1").lower(), v.decode("latin-1"))
                           for k, v in scope.get("headers", []) if k.lower() == b"x-request-id")
            trace = self.tracer.start(headers, scope["method"], path)
            # Request.state of the endpoint reads scope["state"]
            scope.setdefault("state", {})["trace"] = trace

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = list(message.get("headers", [])) + self.identity
                if trace is not None:
                    message["headers"] += trace_headers(trace)
            await send(message)

        started = time.monotonic()
        if tracked:
            self.state.inflight += 1
            self.metrics.inflight.inc()
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if tracked:
                self.state.inflight -= 1
                self.metrics.inflight.dec()
            self.metrics.requests.labels(endpoint, method, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.monotonic() - started)
            if trace is not None:  # a stream: after its last byte
                self.tracer.finish(trace, status[0])


def trace_headers(trace):
    """Server-Timing for the stages done when the response starts (the gateway logs it); the
    request ID when qa-api made it (a direct caller; the gateway sends its own)."""
    found = []
    timing = trace.server_timing()
    if timing:
        found.append((b"server-timing", timing.encode("latin-1")))
    if trace.generated:
        found.append((b"x-request-id", trace.request_id.encode("latin-1")))
    return found
