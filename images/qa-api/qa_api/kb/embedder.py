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
        """L2-normalized float32 matrix, one row per text.

        More texts than one batch (a build) go in batches of similar token counts: a batch is
        padded to its longest text, and sentence-transformers groups texts by characters,
        which puts Chinese chunks (about a token per character) beside English ones (about a
        token per four) and pads those to the Chinese length. Each text's vector is the same
        either way (padding is masked out) up to float rounding.
        """
        import numpy as np

        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype="float32")
        with self._lock:
            if len(texts) <= batch_size:  # a query: one call
                return self._encode(texts, batch_size)
            vectors = np.empty((len(texts), self.dim), dtype="float32")
            for rows in length_batches(self._token_counts(texts), batch_size):
                vectors[rows] = self._encode([texts[i] for i in rows], len(rows))
        return vectors

    def _encode(self, texts, batch_size):
        import numpy as np

        vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype="float32")

    def _token_counts(self, texts):
        """Tokens of each text as the model sees it (cut at its max_seq_length); characters
        when the model has no tokenizer to ask."""
        tokenizer = getattr(self.model, "tokenizer", None)
        limit = getattr(self.model, "max_seq_length", None)
        if tokenizer is None or not limit:
            return [len(t) for t in texts]
        ids = tokenizer(texts, truncation=True, max_length=limit, return_attention_mask=False,
                        return_token_type_ids=False)["input_ids"]
        return [len(i) for i in ids]


def length_batches(lengths, batch_size):
    """Batches of indexes (each a list, at most batch_size long) in order of decreasing
    length, ties in input order: the texts of one batch are as close in length as can be."""
    if batch_size < 1:
        raise ValueError("batch size must be >= 1, got %d" % batch_size)
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


@functools.lru_cache(maxsize=4)
def load_embedder(path, name):
    """One loaded model per (path, name) and process: loading takes seconds."""
    return Embedder(path, name)
