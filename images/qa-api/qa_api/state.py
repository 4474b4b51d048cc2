"""Service state: what /health reports and what readiness and chat depend on."""

import time

from qa_api.kb.store import lexical_origin


class ServiceState:
    def __init__(self, settings):
        self.settings = settings
        self.embedder = None
        # the model queries are embedded with (with QA_EMBED_MODEL=auto: the KB manifest's)
        self.embed_name = None
        self.kb = None
        self.retriever = None
        self.reranker = None  # qa_api.rerank.Reranker when QA_RERANK_MODEL is set
        self.inference_ok = False
        # () -> [{name, model, answering, circuit, route}] of the inference backends (Router)
        self.backends = list
        self.error = None
        # what each start-up step is doing; None once done
        self.steps = {"kb": "starting", "inference": "starting"}
        self.kb_info = {"name": None, "version": None, "checksum": None, "doc_count": None,
                        "chunk_count": None, "built_at": None}
        self.inflight = 0
        self.draining_since = None
        self.started_at = time.time()
        self.ready_at = None

    @property
    def draining(self):
        return self.draining_since is not None

    def start_draining(self):
        if self.draining_since is None:
            self.draining_since = time.monotonic()

    @property
    def can_answer(self):
        """Chat works (also while draining: late requests still get an answer)."""
        return self.error is None and self.retriever is not None and self.inference_ok

    @property
    def status(self):
        if self.draining:
            return "draining"
        if self.error is not None:
            return "error"
        if self.can_answer:
            return "ready"
        return "loading"

    def mark_ready_if_complete(self):
        if self.can_answer and self.ready_at is None:
            self.ready_at = time.time()

    def health(self, cache_connected):
        embedding = {"name": self.embed_name or self.settings.embed_name,
                     "dim": self.embedder.dim if self.embedder is not None else None}
        return {
            "status": self.status,
            "color": self.settings.color,
            "version": self.settings.version,
            "release": self.settings.release,
            # the built-in route's (QA_LLM_MODEL): what the release expects this color to serve
            "model": self.settings.llm_model,
            "embedding": embedding,
            "kb": dict(self.kb_info),
            "cache": {"connected": bool(cache_connected)},
            # extra field: how passages are found; "in-memory": an old KB without lexical.npz
            "retrieval": {"mode": self.settings.retrieval_mode,
                          "lexical_index": lexical_origin(self.kb) if self.kb is not None else None,
                          "rerank": self.reranker.describe() if self.reranker is not None else None},
            # extra field: which inference backends answer (names only: no URLs, no keys)
            "inference": {"backends": self.backends()},
            "inflight": self.inflight,
            "error": self.error,
            # why it is not ready yet (extra field, null once ready)
            "detail": "; ".join(v for v in self.steps.values() if v)
                      if self.status == "loading" else None,
        }
