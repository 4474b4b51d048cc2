"""Concurrency limits for generations: per API key, and a bounded queue in front of the
inference server. Cache hits pass neither: they are cheap and must stay fast under load.

The key is never kept or logged: only a short sha256 of it identifies a client.
"""

import asyncio
import collections
import contextlib
import hashlib
import logging

from qa_api.errors import OpenAIError

log = logging.getLogger("qa_api.limits")
KEY_RETRY_AFTER = 1


def client_id(headers, client):
    """Short hash of the bearer key the gateway passed on, else of the client's address."""
    scheme, dummy, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        raw = "key:" + token.strip()
    else:  # no key: the gateway's X-Real-IP, or the peer for direct callers
        raw = "addr:" + (headers.get("x-real-ip") or (client.host if client else "unknown"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]


class Limits:
    def __init__(self, settings, metrics):
        self.per_key = settings.key_concurrency
        self.queue = settings.inference_queue
        self.timeout = settings.inference_queue_timeout
        self.metrics = metrics
        self.active = collections.Counter()  # client id -> generations; only ids in flight
        self.slots = asyncio.Semaphore(settings.inference_concurrency)
        self.waiting = 0

    def _refuse(self, status, reason, message, kind, code, retry_after):
        self.metrics.rejected.labels(reason).inc()
        return OpenAIError(status, message, kind, code,
                           headers={"Retry-After": str(max(1, round(retry_after)))})

    @contextlib.contextmanager
    def _key(self, client):
        if self.per_key and self.active[client] >= self.per_key:
            log.warning("client %s over its concurrency limit (%d)", client, self.per_key)
            raise self._refuse(429, "key_concurrency",
                               "too many concurrent requests for this API key (at most %d); "
                               "retry when one has finished" % self.per_key,
                               "rate_limit_error", "concurrency_limit_exceeded", KEY_RETRY_AFTER)
        self.active[client] += 1
        try:
            yield
        finally:
            self.active[client] -= 1
            if self.active[client] <= 0:
                del self.active[client]  # memory bounded by the clients in flight

    @contextlib.asynccontextmanager
    async def _inference_slot(self):
        if self.slots.locked() and self.waiting >= self.queue:
            raise self._refuse(503, "queue_full", "the inference queue is full; retry shortly",
                               "server_error", "server_busy", self.timeout / 4)
        self.waiting += 1
        self.metrics.queue_waiting.inc()
        try:
            async with asyncio.timeout(self.timeout):
                await self.slots.acquire()
        except TimeoutError:
            raise self._refuse(503, "queue_timeout",
                               "no inference slot within %.0f s; retry shortly" % self.timeout,
                               "server_error", "server_busy", self.timeout / 4) from None
        finally:
            self.waiting -= 1
            self.metrics.queue_waiting.dec()
        try:
            yield
        finally:
            self.slots.release()

    @contextlib.asynccontextmanager
    async def generation(self, client):
        """Held for the whole generation (a stream: until its last byte is sent)."""
        with self._key(client):
            async with self._inference_slot():
                yield
