"""/v1/chat/completions: cache lookup, retrieval, inference, cited answer."""

import asyncio
import logging
import time

from fastapi.responses import JSONResponse, StreamingResponse

from qa_api.cache import cache_key
from qa_api.llm import InferenceError
from qa_api.openai_format import ChunkWriter, completion, error_response
from qa_api.prompt import build_messages, last_user_text, text_of
from qa_api.retrieval import source_refs, sources_line

log = logging.getLogger("qa_api.chat")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
REPLAY_PIECE = 32  # characters per SSE event when a cached answer is replayed


def with_sources(content, hits):
    content = content.strip()
    return (content + "\n\n" if content else "") + sources_line(hits)


class ChatService:
    def __init__(self, settings, state, cache, inference, metrics):
        self.settings = settings
        self.state = state
        self.cache = cache
        self.inference = inference
        self.metrics = metrics

    async def handle(self, request):
        settings = self.settings
        if not self.state.can_answer:
            return error_response(503, "service not ready: %s" % self.state.status,
                                  "service_unavailable", headers={"Retry-After": "5"})
        messages = [{"role": "system" if m.role == "developer" else m.role,
                     "content": text_of(m.content)} for m in request.messages]
        question = last_user_text(messages)
        if question is None:
            return error_response(400, "messages must contain a non-empty user message",
                                  "invalid_request_error")
        wanted = request.max_tokens or request.max_completion_tokens or settings.max_tokens
        max_tokens = min(wanted, settings.max_tokens)
        top_k = request.top_k or settings.top_k
        key = cache_key(self.state.kb.checksum, settings.llm_model, messages,
                        request.temperature, max_tokens, top_k, request.top_p)

        cached = await self.cache.get(key)
        if cached is not None:
            self.metrics.cache_hits.inc()
            if request.stream:
                return StreamingResponse(self._replay(cached), media_type="text/event-stream",
                                         headers=dict(SSE_HEADERS, **{"X-Cache": "HIT"}))
            return JSONResponse(completion(settings.llm_model, cached["content"],
                                           cached.get("finish_reason", "stop"),
                                           cached.get("sources", []), cached.get("usage")),
                                headers={"X-Cache": "HIT"})
        self.metrics.cache_misses.inc()

        started = time.monotonic()
        hits = await asyncio.to_thread(self.state.retriever.retrieve, question, top_k)
        self.metrics.retrieval_latency.observe(time.monotonic() - started)
        llm_messages = build_messages(messages, hits)
        sources = source_refs(hits)

        if not request.stream:
            try:
                content, finish, usage = await self.inference.complete(
                    llm_messages, max_tokens, request.temperature, request.top_p)
            except InferenceError as exc:
                self.metrics.llm_errors.inc()
                log.error("%s", exc)
                return error_response(502, str(exc), "upstream_error", headers={"X-Cache": "MISS"})
            answer = with_sources(content, hits)
            await self.cache.put(key, {"content": answer, "finish_reason": finish,
                                       "sources": sources, "usage": usage})
            return JSONResponse(completion(settings.llm_model, answer, finish, sources, usage),
                                headers={"X-Cache": "MISS"})

        try:
            upstream = await self.inference.open_stream(
                llm_messages, max_tokens, request.temperature, request.top_p)
        except InferenceError as exc:
            self.metrics.llm_errors.inc()
            log.error("%s", exc)
            return error_response(502, str(exc), "upstream_error", headers={"X-Cache": "MISS"})
        return StreamingResponse(self._relay(upstream, hits, key), media_type="text/event-stream",
                                 headers=dict(SSE_HEADERS, **{"X-Cache": "MISS"}))

    async def _relay(self, upstream, hits, key):
        """Pass the model's tokens through, then the sources; cache only a complete answer."""
        writer = ChunkWriter(self.settings.llm_model)
        pieces, finish = [], "stop"
        yield writer.role()
        try:
            async for piece, reason in self.inference.iter_deltas(upstream):
                if piece:
                    pieces.append(piece)
                    yield writer.content(piece)
                if reason:
                    finish = reason
        except Exception as exc:  # any upstream break (HTTP, protocol, stream error event)
            self.metrics.llm_errors.inc()
            log.error("inference stream broke: %s", exc)
            yield writer.error("inference stream broke: %s" % exc)
            yield writer.done()
            return
        finally:
            await upstream.aclose()
        tail = "\n\n" + sources_line(hits)
        yield writer.content(tail)
        sources = source_refs(hits)
        yield writer.final(finish, sources)
        yield writer.done()
        await self.cache.put(key, {"content": "".join(pieces) + tail, "finish_reason": finish,
                                   "sources": sources, "usage": None})

    async def _replay(self, cached):
        writer = ChunkWriter(self.settings.llm_model)
        yield writer.role()
        text = cached["content"]
        for start in range(0, len(text), REPLAY_PIECE):
            yield writer.content(text[start:start + REPLAY_PIECE])
        yield writer.final(cached.get("finish_reason", "stop"), cached.get("sources", []))
        yield writer.done()
