"""ASGI middleware: identity headers on every response, in-flight tracking, metrics.

Pure ASGI (not BaseHTTPMiddleware) so a streamed body counts as in flight
until its last byte is sent: that is what SIGTERM draining waits for.
"""

import time

KNOWN = {"/v1/chat/completions", "/v1/models", "/health", "/health/readiness",
         "/health/liveness", "/metrics"}
UNTRACKED = {"/health", "/health/readiness", "/health/liveness", "/metrics"}
# Metric labels come from fixed sets: any junk method or path costs nothing to remember.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class ServiceMiddleware:
    def __init__(self, app, settings, state, metrics):
        self.app = app
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

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = list(message.get("headers", [])) + self.identity
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
