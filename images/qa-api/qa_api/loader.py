"""Background start-up: verify the KB and the embedding model's digest, load the model, wait for inference.

Runs after the server listens, so /health answers "loading" at once.
"""

import asyncio
import logging

from qa_api.kb.embedder import EmbeddingError, load_embedder
from qa_api.kb.identity import IdentityError, model_digest
from qa_api.kb.store import (KBError, check_embedding_digest, compute_checksum, load_kb, read_manifest,
                             service_model)
from qa_api.llm import InferenceError
from qa_api.rerank import RerankError, load_reranker
from qa_api.retrieval import Retriever

log = logging.getLogger("qa_api.loader")
INFERENCE_RETRY = 2.0
INFERENCE_WATCH = 3.0
INFERENCE_DOWN_AFTER = 3


async def load_knowledge(state, settings, metrics=None):
    try:
        state.steps["kb"] = "reading KB manifest in %s" % settings.kb_dir
        manifest = await asyncio.to_thread(read_manifest, settings.kb_dir)
        state.kb_info.update(name=manifest.get("name"), version=manifest.get("version"),
                             doc_count=manifest.get("doc_count"),
                             chunk_count=manifest.get("chunk_count"),
                             built_at=manifest.get("created_at"))
        # QA_EMBED_MODEL=auto: the bundled model the manifest names, so queries match the index
        model_path, embed_name = service_model(manifest, settings.embed_model, settings.embed_name)
        state.embed_name = embed_name
        state.steps["kb"] = "computing KB checksum and embedding model digest"
        # Both hash files (the model: ~90 MB to a few GB): in parallel, off the event loop, once.
        state.kb_info["checksum"], digest = await asyncio.gather(
            asyncio.to_thread(compute_checksum, settings.kb_dir),
            asyncio.to_thread(model_digest, model_path))
        log.info("embedding model %s (%s): digest %s", embed_name, model_path, digest)
        # Before loading the model: an index of other vectors is refused, not served.
        check_embedding_digest(manifest, model_path, digest)
        state.steps["kb"] = "loading embedding model %s" % model_path
        embedder = await asyncio.to_thread(load_embedder, model_path, embed_name)
        state.embedder = embedder
        built_with = (manifest.get("embedding") or {}).get("runtime")
        # the runtimes agree within 1e-4 per component (tests/test_onnx_embedding.py): said, not refused
        log.info("embedding queries with %s (the KB's vectors: %s)", embedder.runtime, built_with or "not recorded")
        state.steps["kb"] = "loading KB index"
        kb = await asyncio.to_thread(load_kb, settings.kb_dir, manifest,
                                     state.kb_info["checksum"], embed_name, embedder.dim)
        # the first forward pass is slow; pay it here, not in the first request
        await asyncio.to_thread(embedder.encode_query, "warm-up")
        reranker = None
        if settings.rerank_model:
            state.steps["kb"] = "loading reranker %s" % settings.rerank_model
            reranker = await asyncio.to_thread(load_reranker, settings.rerank_model,
                                               settings.rerank_candidates, settings.rerank_max_length)
            await asyncio.to_thread(reranker.score, "warm-up", ["warm-up"])
            log.info("reranker %s: digest %s, %d candidates", settings.rerank_model, reranker.digest,
                     settings.rerank_candidates)
    except (KBError, EmbeddingError, IdentityError, RerankError) as exc:
        state.error = str(exc)
        log.error("not serving: %s", exc)
        return
    except Exception as exc:  # an unexpected failure must show in /health, not vanish
        log.exception("loading failed")
        state.error = "loading failed: %s: %s" % (type(exc).__name__, exc)
        return
    state.kb = kb
    state.reranker = reranker
    state.steps["kb"] = None
    state.retriever = Retriever(kb, embedder, settings.retrieval_mode, settings.retrieval_candidates,
                                reranker, metrics.rerank_latency.observe if metrics is not None else None)
    log.info("KB %s version %s loaded: %d chunks, checksum verified",
             state.kb_info["name"], state.kb_info["version"], len(kb.chunks))
    state.mark_ready_if_complete()


async def wait_for_inference(state, inference):
    last = None
    while True:
        try:
            await inference.models()
        except InferenceError as exc:
            if str(exc) != last:
                log.warning("waiting for inference: %s", exc)
                last = str(exc)
                state.steps["inference"] = "waiting for inference: %s" % exc
            await asyncio.sleep(INFERENCE_RETRY)
            continue
        state.inference_ok = True
        state.steps["inference"] = None
        log.info("inference answered at %s", inference.base_url)
        state.mark_ready_if_complete()
        return


async def watch_inference(state, inference, every=INFERENCE_WATCH, down_after=INFERENCE_DOWN_AFTER):
    """After start-up: a stopped inference server (a color kept cold) makes the color not ready, and ready again
    once it answers. Only "nothing listens" counts, ``down_after`` times in a row: a server busy generating
    (a slow answer) is not down. With several backends (llm.BackendPool) ``models()`` succeeds while at least
    one answers and is "unreachable" only when none listens; each probe also updates /health's backends."""
    failures = 0
    while True:
        await asyncio.sleep(every)
        try:
            await inference.models()
        except InferenceError as exc:
            failures = failures + 1 if exc.unreachable else 0
            if failures >= down_after and state.inference_ok:
                state.inference_ok = False
                state.steps["inference"] = "inference server stopped: %s" % exc
                log.warning("inference server stopped: %s; not ready until it answers", exc)
            continue
        failures = 0
        if not state.inference_ok:
            state.inference_ok = True
            state.steps["inference"] = None
            log.info("inference answered again at %s", inference.base_url)


async def load_all(state, settings, inference, metrics=None):
    await asyncio.gather(load_knowledge(state, settings, metrics), wait_for_inference(state, inference))
    await watch_inference(state, inference)
