"""Optional second stage of retrieval: a local cross-encoder rescores the fused candidates.

Hybrid fusion (qa_api.retrieval) ranks by ranks only; a cross-encoder reads the question and
each passage together and scores their relevance, which reorders the top candidates before
the passages that fit the prompt budget are chosen (qa_api.prompt, unchanged). Off unless
QA_RERANK_MODEL names a local folder (sentence-transformers CrossEncoder or a Hugging Face
*ForSequenceClassification model, e.g. an operator's bge-reranker); nothing is downloaded.
"""

import json
import os
import threading

from qa_api.fingerprint import FingerprintError, fingerprint_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WEIGHTS = ("model.safetensors", "pytorch_model.bin")
FIX = ("set QA_RERANK_MODEL (role variable qa_service_rerank_model_dir) to a local cross-encoder "
       "folder, as CrossEncoder.save() writes it, or leave it empty to rank without a reranker")


class RerankError(Exception):
    pass


def check_folder(path):
    """Refuse what is not a cross-encoder folder, naming the path and the fix."""
    if not path or not os.path.isdir(path):
        raise RerankError("reranker model folder not found: %r; %s" % (path, FIX))
    config_path = os.path.join(path, "config.json")
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
    except FileNotFoundError:
        raise RerankError("%s has no config.json: not a model folder; %s" % (path, FIX)) from None
    except (OSError, ValueError) as exc:
        raise RerankError("cannot read %s: %s; %s" % (config_path, exc, FIX)) from None
    architectures = config.get("architectures") if isinstance(config, dict) else None
    if not architectures or not all(str(a).endswith("ForSequenceClassification") for a in architectures):
        # an embedding model (BertModel) would load with a random head and rank at random
        raise RerankError("%s is not a cross-encoder: config.json architectures %r, expected a "
                          "*ForSequenceClassification model (an embedding model cannot rerank); %s"
                          % (path, architectures, FIX))
    if not any(os.path.isfile(os.path.join(path, name)) for name in WEIGHTS):
        raise RerankError("%s has no weights (%s); %s" % (path, " or ".join(WEIGHTS), FIX))
    return config


def reorder(hits, scores, top_k):
    """The hits by cross-encoder score, best first, cut to top_k. Ties keep the fused order.
    Each hit keeps its fused score as "fused_score"; "score" becomes the reranker's."""
    if len(scores) != len(hits):
        raise RerankError("the reranker returned %d scores for %d passages" % (len(scores), len(hits)))
    order = sorted(range(len(hits)), key=lambda i: (-float(scores[i]), i))
    return [dict(hits[i], fused_score=hits[i]["score"], score=round(float(scores[i]), 4))
            for i in order[:top_k]]


def passage_text(hit):
    """What the cross-encoder reads: the heading path (where the passage sits) and its text."""
    heading = hit.get("heading")
    return "%s\n%s" % (heading, hit["text"]) if heading else hit["text"]


class Reranker:
    """score(query, texts) with a CrossEncoder loaded from a local folder (CPU)."""

    def __init__(self, path, model, digest, candidates=20, batch_size=16):
        self.path = path
        self.model = model
        self.digest = digest
        self.candidates = candidates
        self.batch_size = batch_size
        self._lock = threading.Lock()  # torch modules are not documented safe for concurrent calls

    def score(self, query, texts):
        if not texts:
            return []
        with self._lock:
            scores = self.model.predict([(query, text) for text in texts], batch_size=self.batch_size,
                                        show_progress_bar=False, convert_to_numpy=True)
        return [float(s) for s in scores.reshape(-1)]

    def rerank(self, query, hits, top_k):
        return reorder(hits, self.score(query, [passage_text(h) for h in hits]), top_k)

    def describe(self):
        """/health's view: the folder in the container, its content digest, how deep it reads."""
        return {"model": self.path, "digest": self.digest, "candidates": self.candidates}


def load_reranker(path, candidates=20, max_length=256):
    """A Reranker over the cross-encoder in ``path`` (checked, fingerprinted, loaded offline)."""
    check_folder(path)
    try:
        digest = fingerprint_dir(path)
    except (FingerprintError, OSError) as exc:
        raise RerankError("cannot fingerprint the reranker folder %s: %s (a model copied out of a "
                          "Hugging Face cache is made of symlinks: copy it with cp -rL)" % (path, exc)) from None
    try:
        from sentence_transformers import CrossEncoder  # pylint: disable=import-outside-toplevel

        model = CrossEncoder(path, device="cpu", local_files_only=True, max_length=max_length)
    except Exception as exc:  # any loader failure is a bad folder for the operator
        raise RerankError("cannot load the cross-encoder in %s: %s: %s; %s"
                          % (path, type(exc).__name__, exc, FIX)) from None
    return Reranker(path, model, digest, candidates)
