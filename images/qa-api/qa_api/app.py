"""FastAPI application: OpenAI-compatible chat over the mounted KB, health, metrics."""

import asyncio
import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from qa_api import __version__
from qa_api.cache import AnswerCache
from qa_api.chat import ChatService
from qa_api.config import Settings
from qa_api.llm import InferenceClient
from qa_api.loader import load_all
from qa_api.metrics import Metrics
from qa_api.middleware import ServiceMiddleware
from qa_api.openai_format import error_response
from qa_api.schemas import ChatRequest
from qa_api.state import ServiceState

log = logging.getLogger("qa_api")


def create_app(settings=None):
    settings = settings or Settings.from_env()
    state = ServiceState(settings)
    metrics = Metrics()
    metrics.info.labels(settings.color, settings.version, settings.llm_model, "").set(1)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        inference = InferenceClient(settings.llm_base_url, settings.llm_model,
                                    settings.llm_api_key, settings.llm_timeout)
        cache = AnswerCache(settings.redis_host, settings.redis_port, settings.redis_password,
                            settings.cache_ttl, metrics)
        app.state.cache = cache
        app.state.chat = ChatService(settings, state, cache, inference, metrics)
        cache.start()
        loading = asyncio.get_running_loop().create_task(load_all(state, settings, inference))
        try:
            yield
        finally:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            await cache.stop()
            await inference.close()

    app = FastAPI(title="llmops qa-api", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.service = state
    app.state.metrics = metrics

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc):
        problems = "; ".join("%s: %s" % (".".join(str(p) for p in e.get("loc", ())), e.get("msg"))
                             for e in exc.errors())
        return error_response(400, "invalid request: %s" % problems, "invalid_request_error")

    def cache_connected():
        cache = getattr(app.state, "cache", None)
        return bool(cache and cache.connected)

    @app.get("/health")
    async def health():
        metrics.ready.set(1 if state.status == "ready" else 0)
        return state.health(cache_connected())

    @app.get("/health/readiness")
    async def readiness():
        ready = state.status == "ready"
        metrics.ready.set(1 if ready else 0)
        return JSONResponse({"ready": ready, "status": state.status},
                            status_code=200 if ready else 503)

    @app.get("/health/liveness")
    async def liveness():
        return {"alive": True}

    @app.get("/metrics")
    async def prometheus():
        metrics.ready.set(1 if state.status == "ready" else 0)
        if state.kb_info.get("version"):
            metrics.info.clear()
            metrics.info.labels(settings.color, settings.version, settings.llm_model,
                                state.kb_info["version"]).set(1)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": settings.llm_model, "object": "model",
                                            "created": int(state.started_at), "owned_by": "llmops"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest, request: Request):
        return await request.app.state.chat.handle(body, request.headers)

    @app.exception_handler(404)
    async def not_found(request, exc):
        return error_response(404, "no such endpoint: %s %s" % (request.method, request.url.path),
                              "not_found")

    app.add_middleware(ServiceMiddleware, settings=settings, state=state, metrics=metrics)
    return app
