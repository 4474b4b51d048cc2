"""Answer cache in Redis. Redis down means "no cache", never an error.

Requests use Redis only while it is known to answer; a failed call marks it
down and a background monitor reconnects. Short socket timeouts keep a dead
Redis from adding more than a fraction of a second to any request.
"""

import asyncio
import hashlib
import json
import logging
import re

log = logging.getLogger("qa_api.cache")

SOCKET_TIMEOUT = 0.5
MONITOR_INTERVAL = 2.0
KEY_PREFIX = "qa:answer:v2:"


def _normalize_text(text):
    return re.sub(r"\s+", " ", text).strip().casefold()


def cache_key(release, kb_checksum, model, messages, temperature, max_tokens, top_k, top_p=None):
    """sha256 over the release fingerprint, KB checksum, model and the normalized request."""
    payload = {
        "release": release,
        "kb": kb_checksum,
        "model": model,
        "messages": [{"role": m["role"], "content": _normalize_text(m["content"])} for m in messages],
        "temperature": temperature,
        "top_p": top_p,
        "max_tokens": max_tokens,
        "top_k": top_k,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return KEY_PREFIX + hashlib.sha256(blob.encode("utf-8")).hexdigest()


def user_turns(messages):
    """A request's turns: its user messages (system, developer and assistant messages are
    context, not turns). One is a question alone; more is a conversation."""
    return sum(1 for m in messages if m["role"] == "user")


def ttl_for(messages, single_turn, multi_turn):
    """Seconds an answer stays cached: a question alone (the hot questions many users ask
    the same way) ``single_turn``; a conversation, whose history is rarely repeated,
    ``multi_turn``."""
    return single_turn if user_turns(messages) <= 1 else multi_turn


class AnswerCache:
    def __init__(self, host, port, password, metrics):
        self.enabled = bool(host)
        self.metrics = metrics
        self.connected = False
        self._client = None
        self._task = None
        if self.enabled:
            from redis.asyncio import Redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            self._client = Redis(
                host=host, port=port, password=password,
                socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT,
                retry=Retry(NoBackoff(), 0), health_check_interval=0,
            )

    def _set_connected(self, value):
        if value != self.connected:
            log.warning("redis %s", "connected" if value else "unavailable: answering without cache")
        self.connected = value
        self.metrics.cache_connected.set(1 if value else 0)

    async def ping(self):
        if not self.enabled:
            return False
        try:
            await asyncio.wait_for(self._client.ping(), SOCKET_TIMEOUT * 2)
            self._set_connected(True)
        except Exception as exc:  # any redis/socket failure only means: no cache
            log.debug("redis ping failed: %s", exc)
            self._set_connected(False)
        return self.connected

    async def _monitor(self):
        while True:
            await self.ping()
            await asyncio.sleep(MONITOR_INTERVAL)

    def start(self):
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._monitor())

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._client is not None:
            try:
                await self._client.aclose()
            except Exception:  # closing a dead connection may fail; nothing to do
                pass

    async def _call(self, coro_factory):
        if not (self.enabled and self.connected):
            return None
        try:
            return await asyncio.wait_for(coro_factory(), SOCKET_TIMEOUT * 2)
        except Exception as exc:  # any redis/socket failure only means: no cache
            log.debug("redis call failed: %s", exc)
            self.metrics.cache_errors.inc()
            self._set_connected(False)
            return None

    async def get(self, key):
        raw = await self._call(lambda: self._client.get(key))
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) and "content" in value else None

    async def put(self, key, value, ttl):
        """Store ``value`` for ``ttl`` seconds (ttl_for)."""
        blob = json.dumps(value, ensure_ascii=False)
        await self._call(lambda: self._client.set(key, blob, ex=ttl))
