"""GET /metrics/inference: the color's own inference server's Prometheus metrics, passed through.

vLLM serves /metrics on its API port. On a fleet that port is published nowhere (a color host
publishes only its qa-api, on its private interface), and on one host it sits on the internal
network: Prometheus scrapes it here instead, at the qa-api targets it already has, so the color
label and the placement come from one place. Off unless QA_INFERENCE_METRICS=on (llama.cpp's
server and external providers have no such endpoint): then 404. Like /metrics, the gateway
never routes this path; it is reached on the service network or the private interface only.
"""

import urllib.parse

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response

from qa_api.errors import OpenAIError

PATH = "/metrics/inference"
MAX_BYTES = 8 << 20  # a vLLM exposition is tens of KB; a runaway one must not fill the qa-api
TIMEOUT = 5.0  # below Prometheus' default scrape timeout (10 s)

router = APIRouter()


def metrics_url(base_url):
    """http://qa-llm-blue:8000/v1 -> http://qa-llm-blue:8000/metrics (vLLM's, beside its API)."""
    parts = urllib.parse.urlsplit(base_url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/metrics", "", ""))


async def fetch(url, timeout=TIMEOUT, limit=MAX_BYTES):
    """(body, content type) of the exposition at url; OpenAIError 502 naming url and what failed."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            async with client.stream("GET", url) as upstream:
                if upstream.status_code != 200:
                    raise OpenAIError(502, "the inference server answered %s at %s"
                                      % (upstream.status_code, url), "api_error", "inference_metrics")
                body = bytearray()
                async for piece in upstream.aiter_bytes():
                    body += piece
                    if len(body) > limit:
                        raise OpenAIError(502, "the inference server's metrics at %s exceed %d bytes"
                                          % (url, limit), "api_error", "inference_metrics")
                return bytes(body), upstream.headers.get("content-type", "text/plain; version=0.0.4")
    except httpx.HTTPError as exc:
        raise OpenAIError(502, "cannot read the inference server's metrics at %s: %s: %s"
                          % (url, type(exc).__name__, exc), "api_error", "inference_metrics") from None


@router.get(PATH)
async def inference_metrics(request: Request):
    settings = request.app.state.settings
    if not settings.inference_metrics:
        raise OpenAIError(404, "inference metrics are not passed through by this qa-api: set "
                          "QA_INFERENCE_METRICS=on (role variable qa_service_inference_metrics) for an "
                          "inference server that serves /metrics, such as vLLM", "not_found", "unknown_url")
    body, content_type = await fetch(metrics_url(settings.llm_base_url))
    return Response(body, media_type=content_type)
