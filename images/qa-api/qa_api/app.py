"""FastAPI application: OpenAI-compatible chat over the mounted KB, health, metrics."""

import asyncio
import contextlib
import logging
import re
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from qa_api import __version__
from qa_api.cache import AnswerCache
from qa_api.chat import ChatService
from qa_api.config import Settings
from qa_api.errors import install as install_error_handlers
from qa_api.inference_metrics import router as inference_metrics_router
from qa_api.intake import chat_request
from qa_api.limits import Limits, client_id
from qa_api.llm import BackendPool
from qa_api.loader import load_all
from qa_api.metrics import Metrics
from qa_api.middleware import ServiceMiddleware
from qa_api.router import Router
from qa_api.schemas import ChatRequest
from qa_api.state import ServiceState
from qa_api.tracing import Tracer

log = logging.getLogger("qa_api")
# URLs and absolute paths in /health's free-text fields (start-up detail, error)
INTERNALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+|(?<![\w.~-])/[^\s:;,'\"()]+")


def _redacted(text):
    if not text:
        return text
    return INTERNALS.sub(lambda m: "<url>" if "://" in m.group() else "<path>", text)


def health_view(report, settings, headers):
    """/health as shown to this caller: the gateway adds X-Forwarded-For/X-Real-IP, so a
    request without them came from inside (the release modules, the healthcheck)."""
    forwarded = "x-forwarded-for" in headers or "x-real-ip" in headers
    if settings.health_details == "always" or (settings.health_details == "direct"
                                               and not forwarded):
        return report
    return dict(report, error=_redacted(report["error"]), detail=_redacted(report["detail"]))


async def request_resources():
    """What a request holds until its response is sent (a stream: its last byte)."""
    async with contextlib.AsyncExitStack() as stack:
        yield stack


def create_app(settings=None):
    settings = settings or Settings.from_env()
    state = ServiceState(settings)
    metrics = Metrics()
    metrics.info.labels(settings.color, settings.version, settings.llm_model, "").set(1)
    exporter = None
    if settings.otlp_endpoint:
        from qa_api.otlp import OtlpExporter  # pylint: disable=import-outside-toplevel
        exporter = OtlpExporter(settings)
    tracer = Tracer(settings, exporter)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        def pool(backends):  # each route: its own retries, failover and circuit breakers
            return BackendPool(backends, metrics, settings.llm_timeout, settings.llm_attempts,
                               settings.llm_retry_backoff, settings.llm_first_token_timeout,
                               settings.llm_cooldown)
        inference = Router(settings.routes(), settings.default_model, pool)
        app.state.router = inference
        state.backends = inference.status
        cache = AnswerCache(settings.redis_host, settings.redis_port, settings.redis_password,
                            metrics)
        app.state.cache = cache
        app.state.chat = ChatService(settings, state, cache, inference, metrics,
                                     Limits(settings, metrics))
        cache.start()
        loading = asyncio.get_running_loop().create_task(load_all(state, settings, inference, metrics))
        try:
            yield
        finally:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            await cache.stop()
            await inference.close()
            if exporter is not None:  # send the spans still batched
                await asyncio.to_thread(exporter.shutdown)

    app = FastAPI(title="llmops qa-api", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.service = state
    app.state.metrics = metrics

    install_error_handlers(app)

    def cache_connected():
        cache = getattr(app.state, "cache", None)
        return bool(cache and cache.connected)

    @app.get("/health")
    async def health(request: Request):
        metrics.ready.set(1 if state.status == "ready" else 0)
        return health_view(state.health(cache_connected()), settings, request.headers)

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

    app.include_router(inference_metrics_router)

    @app.get("/v1/models")
    async def models():
        """Every model a request may name (one per route), the default first."""
        return {"object": "list", "data": [{"id": name, "object": "model",
                                            "created": int(state.started_at), "owned_by": "llmops"}
                                           for name in app.state.router.model_names]}

    @app.post("/v1/chat/completions")
    async def chat_completions(
            request: Request, body: Annotated[ChatRequest, Depends(chat_request)],
            resources: Annotated[contextlib.AsyncExitStack,
                                 Depends(request_resources, scope="request")]):
        return await request.app.state.chat.handle(
            body, request.headers, client_id(request.headers, request.client), resources,
            getattr(request.state, "trace", None))

    app.add_middleware(ServiceMiddleware, settings=settings, state=state, metrics=metrics,
                       tracer=tracer)
    return app
