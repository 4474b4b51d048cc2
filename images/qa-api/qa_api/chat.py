"""/v1/chat/completions: cache lookup, retrieval, inference, cited answer."""

import asyncio
import collections
import logging
import time

from fastapi.responses import JSONResponse, StreamingResponse

from qa_api.cache import cache_key, ttl_for
from qa_api.llm import InferenceError
from qa_api.metrics import observe_generation
from qa_api.openai_format import ChunkWriter, completion, error_response
from qa_api.privacy import Privacy
from qa_api.prompt import PromptTooLong, build_messages, last_user_text
from qa_api.retrieval import source_refs, sources_line
from qa_api.routing import UnknownModel
from qa_api.tracing import RequestTrace

log = logging.getLogger("qa_api.chat")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
REPLAY_PIECE = 32  # characters per SSE event when a cached answer is replayed
# Request header `X-QA-Cache: bypass`: the cache is neither read nor written and the
# response says `X-Cache: BYPASS` (the release gate scores what the model says now).
BYPASS_HEADER = "x-qa-cache"
# One request's answer: the model it names (its route), the route's backends (BackendPool),
# and its cache entry (key None: not cached) with its lifetime.
Answering = collections.namedtuple("Answering", "model pool key ttl")


def bypasses_cache(headers):
    """True when the request asks to skip the cache (header value `bypass`, any case)."""
    return (headers or {}).get(BYPASS_HEADER, "").strip().lower() == "bypass"


def with_sources(content, hits):
    content = content.strip()
    return (content + "\n\n" if content else "") + sources_line(hits)


class ChatService:
    def __init__(self, settings, state, cache, inference, metrics, limits):
        self.settings = settings
        self.limits = limits
        self.state = state
        self.cache = cache
        self.inference = inference
        self.metrics = metrics
        self.privacy = Privacy(settings)

    async def handle(self, request, headers, client, resources, trace=None):
        """client: hashed API key (limits.client_id); resources: an AsyncExitStack closed
        after the response is sent, which holds the generation's concurrency slots;
        trace: the request's RequestTrace (qa_api.tracing), which times its stages."""
        settings = self.settings
        trace = trace or RequestTrace("untraced")
        received = time.monotonic()  # time to first token counts from here
        trace.attributes["stream"] = bool(request.stream)
        try:
            model, pool = self.inference.route(request.model)
        except UnknownModel as exc:
            return error_response(404, str(exc), "invalid_request_error", "model_not_found",
                                  param="model")
        trace.attributes["model"] = model
        if not self.state.can_answer:
            return error_response(503, "service not ready: %s" % self.state.status,
                                  "service_unavailable", headers={"Retry-After": "5"})
        messages = [{"role": "system" if m.role == "developer" else m.role,
                     "content": m.text()} for m in request.messages]
        question = last_user_text(messages)
        if question is None:
            return error_response(400, "messages must contain a non-empty user message",
                                  "invalid_request_error", "invalid_value", param="messages")
        # privacy: a sensitive word anywhere in the chat refuses it before cache or retrieval
        refused = None
        if self.privacy.words:
            refused = await asyncio.to_thread(self.privacy.refused, messages)
        if refused is not None:
            self.metrics.content_filtered.labels("question").inc()
            log.warning("request refused by the sensitive-word filter (message %d)", refused)
            return error_response(400, "the request contains content this service does not "
                                  "accept (sensitive-word filter)", "invalid_request_error",
                                  "content_filter", param="messages.%d.content" % refused)
        wanted = request.max_tokens or request.max_completion_tokens or settings.max_tokens
        max_tokens = min(wanted, settings.max_tokens)
        top_k = request.top_k or settings.top_k
        bypass = bypasses_cache(headers)
        if bypass:
            key, cached, cache_state = None, None, "BYPASS"
        else:
            with trace.stage("cache"):
                # normalizing the whole chat is linear in its size: off the event loop too
                key = await asyncio.to_thread(cache_key, settings.release, self.state.kb.checksum,
                                              model, messages, request.temperature,
                                              max_tokens, top_k, request.top_p)
                cached, cache_state = await self.cache.get(key), "MISS"
        trace.attributes["cache"] = "HIT" if cached is not None else cache_state
        ttl = ttl_for(messages, settings.cache_ttl_single_turn, settings.cache_ttl_multi_turn)
        answering = Answering(model, pool, key, ttl)
        if cached is not None:
            self.metrics.cache_hits.inc()
            if request.stream:
                return StreamingResponse(self._replay(cached, model), media_type="text/event-stream",
                                         headers=dict(SSE_HEADERS, **{"X-Cache": "HIT"}))
            return JSONResponse(completion(model, cached["content"],
                                           cached.get("finish_reason", "stop"),
                                           cached.get("sources", []), cached.get("usage")),
                                headers={"X-Cache": "HIT"})
        if not bypass:
            self.metrics.cache_misses.inc()
        # From here on the request costs CPU and inference: it needs a slot (or a 429/503).
        await resources.enter_async_context(self.limits.generation(client))

        started = time.monotonic()
        hits = await asyncio.to_thread(self.state.retriever.retrieve, question, top_k)
        self.metrics.retrieval_latency.observe(time.monotonic() - started)
        trace.add("retrieval", started)
        budget = settings.context_tokens - max_tokens if settings.context_tokens else None
        try:
            # pure Python over the whole chat: off the event loop, /health stays fast
            with trace.stage("prompt"):
                llm_messages, hits = await asyncio.to_thread(build_messages, messages, hits, budget)
        except PromptTooLong as exc:
            message = ("%s: the model's context is %d tokens and max_tokens takes %d; shorten "
                       "the conversation or ask for fewer max_tokens"
                       % (exc, settings.context_tokens, max_tokens))
            return error_response(400, message, "context_length_exceeded",
                                  headers={"X-Cache": cache_state})

        call = pool.open_stream if request.stream else pool.complete
        generating = time.monotonic()
        try:
            try:
                result = await call(llm_messages, max_tokens, request.temperature, request.top_p)
            except InferenceError as exc:
                # The estimate is not the model's tokenizer: if the server still refuses
                # the prompt as too long, send half the passages' room once more.
                if not (exc.context_exceeded and budget and hits):
                    raise
                log.warning("prompt over the model's context, retrying with less: %s", exc)
                llm_messages, hits = await asyncio.to_thread(build_messages, messages, hits,
                                                             budget // 2)
                result = await call(llm_messages, max_tokens, request.temperature, request.top_p)
        except (InferenceError, PromptTooLong) as exc:
            self.metrics.llm_errors.inc()
            log.error("%s", exc)
            return error_response(502, str(exc), "upstream_error", headers={"X-Cache": cache_state})
        sources = self.privacy.sources(source_refs(hits))  # privacy: passages shown too

        if not request.stream:
            trace.add("generation", generating)
            content, finish, usage = result
            observe_generation(self.metrics, "complete", (usage or {}).get("completion_tokens") or 0,
                               time.monotonic() - generating)
            answer = self.privacy.answer(with_sources(content, hits))  # privacy: words, PII
            if key is not None:
                await self.cache.put(key, self.privacy.for_cache(
                    {"content": answer, "finish_reason": finish, "sources": sources,
                     "usage": usage}), answering.ttl)
            return JSONResponse(completion(model, answer, finish, sources, usage),
                                headers={"X-Cache": cache_state})
        return StreamingResponse(self._relay(result, hits, answering, received, trace, generating),
                                 media_type="text/event-stream",
                                 headers=dict(SSE_HEADERS, **{"X-Cache": cache_state}))

    async def _relay(self, upstream, hits, answering, received=None, trace=None, generating=None):
        """Pass the model's tokens through, then the sources; cache only a complete answer.

        answering: the request's Answering (model named in the chunks, the pool streaming,
        the cache entry);
        received: when the request arrived (time.monotonic), for the time to first token;
        generating: when the inference call started (the first_token stage of the trace)."""
        received = time.monotonic() if received is None else received
        generating = received if generating is None else generating
        trace = trace or RequestTrace("untraced")
        writer = ChunkWriter(answering.model)
        pieces, finish = [], "stop"
        screen = self.privacy.stream()  # privacy: words (and PII) even across pieces
        # llama.cpp and vLLM send one token per delta: the deltas count the tokens.
        first, deltas = None, 0
        yield writer.role()
        try:
            async for piece, reason in answering.pool.iter_deltas(upstream):
                if piece:
                    deltas += 1
                    if first is None:
                        first = time.monotonic()
                        self.metrics.ttft.observe(first - received)
                        trace.add("first_token", generating, first)
                piece = screen.feed(piece) if piece else ""
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
        if first is not None:
            observe_generation(self.metrics, "stream", deltas, time.monotonic() - first)
            trace.add("generation", first)
        tail = screen.feed("\n\n" + sources_line(hits)) + screen.flush()
        yield writer.content(tail)
        sources = self.privacy.sources(source_refs(hits))
        yield writer.final(finish, sources)
        yield writer.done()
        if answering.key is not None:  # None: the request bypassed the cache
            await self.cache.put(answering.key, self.privacy.for_cache(
                {"content": "".join(pieces) + tail, "finish_reason": finish,
                 "sources": sources, "usage": None}), answering.ttl)

    @staticmethod
    async def _replay(cached, model):
        writer = ChunkWriter(model)
        yield writer.role()
        text = cached["content"]
        for start in range(0, len(text), REPLAY_PIECE):
            yield writer.content(text[start:start + REPLAY_PIECE])
        yield writer.final(cached.get("finish_reason", "stop"), cached.get("sources", []))
        yield writer.done()
