"""Async clients for OpenAI-compatible inference servers (llama.cpp, vLLM, a provider).

InferenceClient talks to one server; BackendPool puts several behind the same interface
with retries before the first token, failover in order and a circuit breaker per backend.
"""

import asyncio
import json
import logging
import time

import httpx

log = logging.getLogger("qa_api.llm")
MAX_BACKOFF = 8.0


class InferenceError(Exception):
    def __init__(self, message, status=None, body="", unreachable=False, reason=None):
        super().__init__(message)
        self.status = status
        self.body = body
        # Nothing listens there (connection refused, name unknown): the server is stopped, not busy.
        self.unreachable = unreachable
        # For metrics (a fixed set): connect | timeout | http_5xx | http_429 | http_4xx |
        # protocol | stream
        self.reason = reason or _reason_of_status(status)

    @property
    def retryable(self):
        """Worth asking again or elsewhere: the server failed or is busy, not the request.
        A 4xx other than 408/429 (a prompt over the context, a bad parameter) is the
        request's fault: another attempt would get the same answer."""
        return self.status is None or self.status >= 500 or self.status in (408, 429)

    @property
    def context_exceeded(self):
        """The server refused the prompt as longer than its context window."""
        text = self.body.lower()
        return self.status == 400 and ("context" in text or "too long" in text
                                       or "maximum" in text)


def _reason_of_status(status):
    if status is None:
        return "protocol"
    if status == 429:
        return "http_429"
    return "http_5xx" if status >= 500 else "http_4xx"


def _reason_of(exc):
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    if isinstance(exc, (httpx.TimeoutException, asyncio.TimeoutError)):
        return "timeout"
    return "protocol"


def _describe(exc):
    return "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__


class InferenceClient:
    def __init__(self, base_url, model, api_key=None, timeout=300.0):
        self.base_url = base_url.rstrip("/")
        self.model = model
        headers = {"Authorization": "Bearer %s" % api_key} if api_key else {}
        self.client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_keepalive_connections=16, max_connections=64),
        )

    async def close(self):
        await self.client.aclose()

    async def models(self):
        """GET {base}/models; raises InferenceError unless it answers 200 with JSON."""
        try:
            response = await self.client.get(self.base_url + "/models", timeout=5.0)
        except httpx.HTTPError as exc:
            raise InferenceError("GET %s/models failed: %s" % (self.base_url, _describe(exc)),
                                 unreachable=isinstance(exc, httpx.ConnectError),
                                 reason=_reason_of(exc)) from None
        if response.status_code != 200:
            raise InferenceError("GET %s/models answered %d" % (self.base_url, response.status_code))
        try:
            return response.json()
        except ValueError:
            raise InferenceError("GET %s/models answered non-JSON" % self.base_url) from None

    def _payload(self, messages, max_tokens, temperature, top_p, stream):
        payload = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                   "stream": stream}
        if temperature is not None:
            payload["temperature"] = temperature
        if top_p is not None:
            payload["top_p"] = top_p
        return payload

    async def complete(self, messages, max_tokens, temperature=None, top_p=None):
        """Non-streaming chat completion -> (content, finish_reason, usage)."""
        url = self.base_url + "/chat/completions"
        try:
            response = await self.client.post(
                url, json=self._payload(messages, max_tokens, temperature, top_p, False))
        except httpx.HTTPError as exc:
            raise InferenceError("POST %s failed: %s" % (url, _describe(exc)),
                                 unreachable=isinstance(exc, httpx.ConnectError),
                                 reason=_reason_of(exc)) from None
        if response.status_code != 200:
            raise InferenceError("POST %s answered %d: %s"
                                 % (url, response.status_code, response.text[:300]),
                                 response.status_code, response.text[:300])
        try:
            body = response.json()
            if "error" in body and "choices" not in body:
                raise InferenceError("POST %s answered an error: %s" % (url, str(body["error"])[:300]),
                                     reason="protocol")
            choice = body["choices"][0]
            return (choice["message"].get("content") or "", choice.get("finish_reason") or "stop",
                    body.get("usage"))
        except (ValueError, KeyError, IndexError, TypeError):
            raise InferenceError("POST %s answered an unexpected body: %s"
                                 % (url, response.text[:300])) from None

    async def open_stream(self, messages, max_tokens, temperature=None, top_p=None):
        """Start a streaming completion; returns the open httpx response (caller closes)."""
        url = self.base_url + "/chat/completions"
        request = self.client.build_request(
            "POST", url, json=self._payload(messages, max_tokens, temperature, top_p, True))
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise InferenceError("POST %s failed: %s" % (url, _describe(exc)),
                                 unreachable=isinstance(exc, httpx.ConnectError),
                                 reason=_reason_of(exc)) from None
        if response.status_code != 200:
            body = (await response.aread())[:300].decode("utf-8", "replace")
            await response.aclose()
            raise InferenceError("POST %s answered %d: %s" % (url, response.status_code, body),
                                 response.status_code, body)
        return response

    @staticmethod
    async def iter_deltas(response):
        """Yield (content_piece, finish_reason) from an OpenAI SSE stream. A stream that
        ends with neither [DONE] nor a finish_reason was cut (the server went away)."""
        finished = False
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except ValueError:
                continue
            if "error" in event:
                raise InferenceError("inference stream error: %s" % event["error"],
                                     reason="stream")
            for choice in event.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") or ""
                finished = finished or bool(choice.get("finish_reason"))
                yield piece, choice.get("finish_reason")
        if not finished:
            raise InferenceError("inference stream ended before its end (no [DONE])",
                                 reason="stream")


class _Breaker:
    """One backend's circuit: closed (used), open (skipped until ``open_until``), and after
    the cool-down half-open: the next request tries it; success closes it, failure reopens it."""

    def __init__(self, backend, client):
        self.backend = backend
        self.client = client
        self.open_until = 0.0
        self.failures = 0  # consecutive
        self.answering = None  # the last /models probe: True, False, None (not asked yet)

    @property
    def name(self):
        return self.backend.name

    def available(self, now):
        return now >= self.open_until

    def state(self, now):
        if self.open_until == 0.0:
            return "closed"
        return "open" if now < self.open_until else "half-open"


class _PeekedStream:
    """An upstream stream of which the first events were already read (to be sure it
    started before any byte reached the client); iterating gives them again first."""

    def __init__(self, breaker, response, events, rest):
        self.breaker, self.response, self.events, self.rest = breaker, response, events, rest

    async def aclose(self):
        await self.rest.aclose()
        await self.response.aclose()


class BackendPool:
    """The inference backends of Settings.backends(), with InferenceClient's interface.

    A call that fails before anything reached the client (connect error, timeout, 5xx,
    429, a broken or empty answer; for a stream: before its first token) is tried again,
    on the next available backend in order, at most ``attempts`` times in all; going back
    to a backend already tried in this request waits a backoff first. A failed backend is
    skipped for ``cooldown`` seconds. Other 4xx answers are raised at once (the request's
    fault). A stream that broke after its first token is never retried (the client
    already has part of an answer): iter_deltas raises, chat.py ends the stream with an
    error event.
    """

    def __init__(self, backends, metrics=None, timeout=300.0, attempts=3, backoff=0.5,
                 first_token_timeout=60.0, cooldown=30.0, clock=time.monotonic):
        self.breakers = [_Breaker(b, InferenceClient(b.base_url, b.model, b.api_key, timeout))
                         for b in backends]
        self.metrics = metrics
        self.attempts = attempts
        self.backoff = backoff
        self.first_token_timeout = first_token_timeout or None
        self.cooldown = cooldown
        self.clock = clock
        self.model = backends[0].model
        if metrics is not None:
            for breaker in self.breakers:
                metrics.backend_up.labels(breaker.name).set(1)

    @property
    def base_url(self):
        """What the loader's log lines name: the backends' names (URLs may hold credentials)."""
        return ", ".join(b.name for b in self.breakers)

    async def close(self):
        for breaker in self.breakers:
            await breaker.client.close()

    # --- state -------------------------------------------------------------------------
    def _failed(self, breaker, exc):
        breaker.failures += 1
        breaker.open_until = self.clock() + self.cooldown
        if self.metrics is not None:
            self.metrics.inference_failures.labels(breaker.name, exc.reason).inc()
            self.metrics.backend_up.labels(breaker.name).set(0)
        log.warning("inference backend %s failed (%s), skipped for %.0f s: %s",
                    breaker.name, exc.reason, self.cooldown, exc)

    def _succeeded(self, breaker):
        if breaker.open_until:
            log.info("inference backend %s answers again", breaker.name)
        breaker.failures = 0
        breaker.open_until = 0.0
        if self.metrics is not None:
            self.metrics.backend_up.labels(breaker.name).set(1)

    def status(self):
        """/health's view: names, circuit and the last probe; no URLs, no keys."""
        now = self.clock()
        return [{"name": b.name, "model": b.backend.model, "answering": b.answering,
                 "circuit": b.state(now)} for b in self.breakers]

    def _order(self, tried):
        """Backends for the next attempt, best first: available and not yet tried in this
        request, then available ones already tried, then (all open) the one that reopens
        first: a request is never refused only because every circuit is open."""
        now = self.clock()
        fresh = [b for b in self.breakers if b.available(now) and b not in tried]
        again = [b for b in self.breakers if b.available(now) and b in tried]
        if fresh or again:
            return fresh + again
        return sorted(self.breakers, key=lambda b: (b in tried, b.open_until))

    # --- calls ---------------------------------------------------------------------------
    async def _with_failover(self, call, what):
        tried, errors, last = [], [], None
        for attempt in range(self.attempts):
            breaker = self._order(tried)[0]
            if breaker in tried:
                await asyncio.sleep(min(self.backoff * 2 ** (tried.count(breaker) - 1), MAX_BACKOFF))
            elif tried and self.metrics is not None:
                self.metrics.inference_failover.labels(tried[-1].name, breaker.name).inc()
            tried.append(breaker)
            try:
                result = await call(breaker)
            except InferenceError as exc:
                if not exc.retryable:
                    self._succeeded(breaker)  # it answered: alive, the request was refused
                    raise
                self._failed(breaker, exc)
                errors.append("%s: %s" % (breaker.name, _short(exc)))
                last = exc
                continue
            self._succeeded(breaker)
            if attempt:
                log.info("%s served by %s after %d failed attempt(s)", what, breaker.name, attempt)
            return result
        raise InferenceError("inference failed after %d attempt(s): %s"
                             % (self.attempts, "; ".join(errors)), last.status, last.body,
                             reason=last.reason)

    async def complete(self, messages, max_tokens, temperature=None, top_p=None):
        async def call(breaker):
            return await breaker.client.complete(messages, max_tokens, temperature, top_p)
        return await self._with_failover(call, "completion")

    async def open_stream(self, messages, max_tokens, temperature=None, top_p=None):
        """Open a stream and read it up to its first token (or its end) before returning,
        so a server that fails or hangs before that is retried and no text is doubled."""
        async def call(breaker):
            response = rest = None
            events = []
            try:
                async with asyncio.timeout(self.first_token_timeout):
                    response = await breaker.client.open_stream(messages, max_tokens,
                                                                temperature, top_p)
                    rest = InferenceClient.iter_deltas(response)
                    async for piece, reason in rest:
                        events.append((piece, reason))
                        if piece or reason:
                            break
                    else:
                        if not events:
                            raise InferenceError("stream ended without an answer",
                                                 reason="protocol")
            except BaseException as exc:
                if rest is not None:
                    await rest.aclose()
                if response is not None:
                    await response.aclose()
                if isinstance(exc, InferenceError):
                    if exc.reason == "stream":  # an error event before any token
                        exc.reason = "protocol"
                    raise
                if isinstance(exc, TimeoutError):
                    raise InferenceError("no first token within %.0f s" % self.first_token_timeout,
                                         reason="timeout") from None
                if isinstance(exc, httpx.HTTPError):
                    raise InferenceError("stream broke before its first token: %s" % _describe(exc),
                                         reason=_reason_of(exc)) from None
                raise
            return _PeekedStream(breaker, response, events, rest)
        return await self._with_failover(call, "stream")

    async def iter_deltas(self, stream):
        """Yield (content_piece, finish_reason); a break after the first token counts as a
        failure of that backend (metrics, circuit) and is raised, never retried."""
        for event in stream.events:
            yield event
        try:
            async for event in stream.rest:
                yield event
        except (InferenceError, httpx.HTTPError) as exc:
            error = exc if isinstance(exc, InferenceError) else InferenceError(_describe(exc))
            error.reason = "stream"
            self._failed(stream.breaker, error)
            raise error from None

    async def models(self):
        """Ask every backend's /models at once; returns the first answer in order, raises
        when none answers (unreachable only when nothing listens anywhere). A backend that
        does not listen is skipped by requests for the cool-down."""
        results = await asyncio.gather(*(b.client.models() for b in self.breakers),
                                       return_exceptions=True)
        answer, errors = None, []
        for breaker, result in zip(self.breakers, results):
            if isinstance(result, BaseException):
                if not isinstance(result, InferenceError):
                    raise result
                breaker.answering = False
                errors.append(result)
                if result.unreachable and breaker.available(self.clock()):
                    self._failed(breaker, result)
                continue
            breaker.answering = True
            if answer is None:
                answer = result
        if answer is not None:
            return answer
        if len(errors) == 1:
            raise errors[0]
        raise InferenceError("no inference backend answers: %s"
                             % "; ".join("%s: %s" % (b.name, e) for b, e in zip(self.breakers, errors)),
                             unreachable=all(e.unreachable for e in errors), reason=errors[0].reason)


def _short(exc):
    """An error without the URL (clients may see it): status and reason."""
    if exc.status is not None:
        return "HTTP %d" % exc.status
    text = str(exc)
    return exc.reason + (": " + text.split(" failed: ", 1)[1] if " failed: " in text else "")
