"""sentence-transformers embedding from a LOCAL model directory only.

The same code embeds chunks in the builder and queries in the service, so both
sides of the index agree. Offline mode is forced: nothing is ever downloaded.
"""

import functools
import os
import threading

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class EmbeddingError(Exception):
    pass


class Embedder:
    def __init__(self, path, name):
        if not path or not os.path.isdir(path):
            raise EmbeddingError("embedding model directory not found: %r "
                                 "(set QA_EMBED_MODEL / --embed-model to a local "
                                 "sentence-transformers folder)" % path)
        if not os.path.isfile(os.path.join(path, "modules.json")) and \
                not os.path.isfile(os.path.join(path, "config.json")):
            raise EmbeddingError("not a sentence-transformers model folder (no modules.json "
                                 "or config.json): %s" % path)
        from sentence_transformers import SentenceTransformer

        self.path = path
        self.name = name
        try:
            self.model = SentenceTransformer(path, device="cpu", local_files_only=True)
        except Exception as exc:  # any failure of a third-party loader: report the path
            raise EmbeddingError("cannot load embedding model from %s: %s" % (path, exc)) from exc
        getter = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        self.dim = int(getter())
        # torch modules are not documented thread-safe for concurrent forward passes
        self._lock = threading.Lock()

    def encode(self, texts, batch_size=32):
        """L2-normalized float32 matrix, one row per text."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype="float32")
        with self._lock:
            vectors = self.model.encode(list(texts), batch_size=batch_size,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype="float32")


@functools.lru_cache(maxsize=4)
def load_embedder(path, name):
    """One loaded model per (path, name) and process: loading takes seconds."""
    return Embedder(path, name)
