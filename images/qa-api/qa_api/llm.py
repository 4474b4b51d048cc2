"""Async client for the OpenAI-compatible inference server (llama.cpp, vLLM, ...)."""

import json

import httpx


class InferenceError(Exception):
    def __init__(self, message, status=None, body="", unreachable=False):
        super().__init__(message)
        self.status = status
        self.body = body
        # Nothing listens there (connection refused, name unknown): the server is stopped, not busy.
        self.unreachable = unreachable

    @property
    def context_exceeded(self):
        """The server refused the prompt as longer than its context window."""
        text = self.body.lower()
        return self.status == 400 and ("context" in text or "too long" in text
                                       or "maximum" in text)


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
                                 unreachable=isinstance(exc, httpx.ConnectError)) from None
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
            raise InferenceError("POST %s failed: %s" % (url, _describe(exc))) from None
        if response.status_code != 200:
            raise InferenceError("POST %s answered %d: %s"
                                 % (url, response.status_code, response.text[:300]),
                                 response.status_code, response.text[:300])
        try:
            body = response.json()
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
            raise InferenceError("POST %s failed: %s" % (url, _describe(exc))) from None
        if response.status_code != 200:
            body = (await response.aread())[:300].decode("utf-8", "replace")
            await response.aclose()
            raise InferenceError("POST %s answered %d: %s" % (url, response.status_code, body),
                                 response.status_code, body)
        return response

    @staticmethod
    async def iter_deltas(response):
        """Yield (content_piece, finish_reason) from an OpenAI SSE stream."""
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
                raise InferenceError("inference stream error: %s" % event["error"])
            for choice in event.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") or ""
                yield piece, choice.get("finish_reason")
