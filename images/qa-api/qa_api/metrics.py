"""Prometheus metrics (qa_ prefix), one registry per app so tests can run many apps."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)


def observe_generation(metrics, mode, tokens, seconds):
    """Count one answer's tokens and its speed (mode: stream | complete); nothing for 0 tokens."""
    if not tokens:
        return
    metrics.tokens.labels(mode).inc(tokens)
    if seconds > 0:
        metrics.tokens_per_second.labels(mode).observe(tokens / seconds)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("qa_requests_total", "HTTP requests answered",
                                ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("qa_request_duration_seconds",
                                 "Time to the end of the response body (streams included)",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.cache_hits = Counter("qa_cache_hits_total", "Chat answers served from Redis", registry=r)
        self.cache_misses = Counter("qa_cache_misses_total", "Chat answers not found in Redis "
                                    "(or Redis unavailable)", registry=r)
        self.cache_errors = Counter("qa_cache_errors_total", "Redis operations that failed", registry=r)
        self.cache_connected = Gauge("qa_cache_connected", "1 when Redis answers", registry=r)
        self.inflight = Gauge("qa_inflight_requests", "Requests being answered (streams included)",
                              registry=r)
        self.ready = Gauge("qa_ready", "1 when the service is ready for traffic", registry=r)
        self.llm_errors = Counter("qa_llm_errors_total", "Failed calls to the inference server",
                                  registry=r)
        self.retrieval_latency = Histogram("qa_retrieval_duration_seconds",
                                           "Query embedding + FAISS search", registry=r,
                                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2))
        self.rerank_latency = Histogram("qa_rerank_duration_seconds",
                                        "Cross-encoder rescoring of the fused candidates (QA_RERANK_MODEL)",
                                        registry=r, buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10))
        # reason: key_concurrency | queue_full | queue_timeout (a fixed set: no key in labels)
        self.rejected = Counter("qa_rejected_total", "Generations refused by a concurrency limit",
                                ["reason"], registry=r)
        self.queue_waiting = Gauge("qa_inference_queue_waiting",
                                   "Generations waiting for an inference slot", registry=r)
        # Per inference backend, labelled by its configured name (never its URL).
        # reason: connect | timeout | http_5xx | http_429 | protocol | stream
        self.inference_failures = Counter("qa_inference_failures_total",
                                          "Failed calls to an inference backend (each attempt)",
                                          ["backend", "reason"], registry=r)
        self.inference_failover = Counter("qa_inference_failover_total",
                                          "Calls moved to another backend after one failed",
                                          ["from_backend", "to_backend"], registry=r)
        self.backend_up = Gauge("qa_inference_backend_up",
                                "1 while a backend's circuit is closed, 0 while it is skipped",
                                ["backend"], registry=r)
        # where: question (refused; a fixed set)
        self.content_filtered = Counter("qa_content_filtered_total",
                                        "Requests refused by the sensitive-word filter",
                                        ["where"], registry=r)
        # Generation speed as users feel it (streams: the first token; every answer: tokens/s).
        self.ttft = Histogram("qa_time_to_first_token_seconds",
                              "From the request to the model's first streamed token (cache misses)",
                              buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("qa_completion_tokens_total",
                              "Tokens the model generated (usage, or streamed pieces)",
                              ["mode"], registry=r)
        self.tokens_per_second = Histogram("qa_generation_tokens_per_second",
                                           "Completion tokens per second of generation, per answer",
                                           ["mode"], registry=r,
                                           buckets=(1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 250, 500))
        self.info = Gauge("qa_info", "Static facts about this instance",
                          ["color", "version", "model", "kb_version"], registry=r)
