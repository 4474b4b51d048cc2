"""The transformer of a sentence-transformers model run by ONNX Runtime (CPU, fp32).

The embedding is ~90 % of a KB build and torch's eager kernels are the slow part; ONNX Runtime
computes the same fp32 graph with fused kernels (measured: vectors within 3e-7 of torch's).
Only the transformer runs in ONNX Runtime: tokenization and the model's own pooling and
normalize modules stay sentence-transformers', so what is computed is the model's own recipe.

The export is derived from the model folder's content: it is cached keyed by the folder's
content digest and the exporter's versions (written aside, then renamed), or made in memory
when no cache directory is given (the service: its root file system is read-only).
Any failure raises OnnxUnavailable, and the caller embeds with torch instead. A cached export
whose torch-free path (onnx_plain) gave torch's vectors is marked so; the next builds load it
with load_plain, without importing torch at all.
"""

import hashlib
import importlib.metadata
import io
import json
import os
import tempfile
import warnings

from qa_api.kb.device import CPU_PROVIDERS

# Bump when export() changes what the file holds: the old files are then not reused.
EXPORT_FORMAT = 1
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# A probe the ONNX vectors must match torch's on before they are used (English, Chinese, long).
PROBE = ["How do I list open files?", "如何查看网络连接的状态？", "tokens " * 300]
TOLERANCE = 1e-4


class OnnxUnavailable(Exception):
    pass


def exporter_versions():
    """The libraries an export depends on: another version may write another graph."""
    found = {}
    for name in ("onnx", "onnxruntime", "torch", "transformers", "sentence-transformers"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def cache_file(cache_dir, model_digest, versions):
    """<cache_dir>/<key>.onnx: one file per (model content, exporter versions, export format)."""
    if not model_digest:
        raise ValueError("the ONNX cache needs the model's content digest")
    key = hashlib.sha256(json.dumps({"model": model_digest, "versions": versions, "opset": OPSET,
                                     "format": EXPORT_FORMAT}, sort_keys=True).encode("utf-8"))
    return os.path.join(cache_dir, key.hexdigest()[:32] + ".onnx")


def container_cpus(affinity, quota_us, period_us):
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota (docker --cpus)."""
    cpus = max(1, affinity)
    if quota_us > 0 and period_us > 0:
        cpus = min(cpus, max(1, -(-quota_us // period_us)))  # ceil: --cpus 1.5 may run 2 threads
    return cpus


def _read_int(path, default=-1):
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().split()[0].replace("max", "-1"))
    except (OSError, ValueError, IndexError):
        return default


def cpu_quota():
    """(quota_us, period_us) of cgroup v2 (cpu.max) or v1; (-1, -1) when unlimited or unknown."""
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as handle:
            quota, period = handle.read().split()[:2]
        return (-1 if quota == "max" else int(quota)), int(period)
    except (OSError, ValueError):
        return (_read_int("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
                _read_int("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def _transformer(model):
    """The Hugging Face module under the model's first (Transformer) module, checked to be a
    plain text forward whose last_hidden_state is the token embeddings."""
    first = model[0]
    config = getattr(first, "modality_config", None) or {"text": {"method": "forward",
                                                                  "method_output_name": "last_hidden_state"}}
    text = config.get("text") or {}
    output = text.get("method_output_name")
    if text.get("method") != "forward" or output not in ("last_hidden_state", ("last_hidden_state",),
                                                         ["last_hidden_state"]):
        raise OnnxUnavailable("its first module is not a text transformer's last_hidden_state (%r)" % text)
    if getattr(first, "module_output_name", "token_embeddings") != "token_embeddings":
        raise OnnxUnavailable("its first module writes %r, not token_embeddings" % first.module_output_name)
    hf_model = getattr(first, "model", None) or getattr(first, "auto_model", None)
    if hf_model is None:
        raise OnnxUnavailable("its first module has no transformer model")
    return hf_model


def export(model, dest):
    """Write the ONNX graph of the model's transformer to dest (a path or a binary file object):
    inputs INPUTS that its tokenizer gives, output last_hidden_state, batch and sequence dynamic."""
    import torch

    hf_model = _transformer(model).eval()
    # texts of two lengths: a padded batch, so the traced graph keeps the attention mask
    # (transformers skips the mask of an unpadded batch, and tracing freezes that choice)
    sample = tokenize(model, ["a short text", "another text, a little longer"])
    names = [n for n in INPUTS if n in sample]
    extra = sorted(set(sample) - set(INPUTS) - {"modality"})
    if "input_ids" not in names or extra:
        raise OnnxUnavailable("its tokenizer gives %s; the export takes %s" % (sorted(sample), ", ".join(INPUTS)))

    class _Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *tensors):
            return self.inner(**dict(zip(names, tensors)), return_dict=True).last_hidden_state

    axes = {name: {0: "batch", 1: "sequence"} for name in names + ["last_hidden_state"]}
    # The tracer warns that shape checks become constants: load() checks the result against
    # torch on texts of other lengths and batch sizes instead of printing them at every build.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Hidden(hf_model), tuple(sample[n] for n in names), dest, input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=OPSET,
                          dynamo=False)


def tokenize(model, texts):
    """The model's own preprocessing (tokenizer, max_seq_length truncation), as encode does it."""
    preprocess = getattr(model, "preprocess", None) or model.tokenize
    return preprocess(texts)


def cached_export(model, cache_dir, model_digest):
    """Path of the model's export in cache_dir, exported (aside, then renamed) when missing."""
    path = cache_file(cache_dir, model_digest, exporter_versions())
    if os.path.isfile(path):
        return path
    os.makedirs(cache_dir, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=cache_dir, prefix=".export-", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            export(model, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)  # a concurrent build renames the same bytes: either wins
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return path


def session(graph, threads, providers=None):
    """An ONNX Runtime session of graph (a path or bytes) on `threads` CPU threads; `providers`
    (qa_api.kb.device) put it on a GPU, the CPU taking what the GPU provider cannot run."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning threads burn the cores between operators: on a shared host (the inference
    # server, other builds) that slows everyone, this build included.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(graph, options, providers=list(providers or CPU_PROVIDERS))


def default_threads():
    return container_cpus(len(os.sched_getaffinity(0)), *cpu_quota())


class OnnxSentenceModel:
    """encode(texts) -> normalized float32 vectors: tokenizer, ONNX transformer, the model's
    own pooling (and normalize) modules."""

    def __init__(self, model, graph, threads, providers=None):
        self.session = session(graph, threads, providers)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.model = model
        self.rest = [model[i] for i in range(1, len(model))]

    def encode(self, texts):
        import numpy as np
        import torch

        features = tokenize(self.model, texts)
        feeds = {n: np.ascontiguousarray(features[n].numpy(), dtype=np.int64) for n in self.inputs}
        hidden = self.session.run(["last_hidden_state"], feeds)[0]
        features["token_embeddings"] = torch.from_numpy(hidden)
        with torch.no_grad():
            for module in self.rest:
                features = module(features)
            vectors = torch.nn.functional.normalize(features["sentence_embedding"], p=2, dim=1)
        return vectors.numpy()


def load_plain(folder, cache_dir, model_digest, threads=None, providers=None):
    """The model without torch (onnx_plain) when its cached export was verified for that path;
    None otherwise (the caller loads it with torch, and load() verifies it for the next build)."""
    from qa_api.kb import onnx_plain

    if not cache_dir or not model_digest:
        return None
    try:
        import onnxruntime  # noqa: F401  pylint: disable=unused-import
        import tokenizers  # noqa: F401  pylint: disable=unused-import
    except ImportError:
        return None
    path = cache_file(cache_dir, model_digest, exporter_versions())
    if not (os.path.isfile(path) and onnx_plain.verified(path, folder)):
        return None
    try:
        return onnx_plain.PlainOnnxModel(folder, path, threads or default_threads(), providers)
    # any failure: the verified torch-loaded path
    except Exception:  # pylint: disable=broad-except
        return None


def verify_plain(model, folder, path, expected, threads, providers=None):
    """Mark the cached export at path usable without torch when the plain path gives torch's
    vectors (expected, on PROBE); a model that is not the plain recipe is simply not marked."""
    from qa_api.kb import onnx_plain

    try:
        plain = onnx_plain.PlainOnnxModel(folder, path, threads, providers)
        if plain.token_counts(PROBE) != tokenize(model, PROBE)["attention_mask"].sum(dim=1).tolist():
            return  # another tokenization than the model's own
        found = plain.encode(PROBE)
    # not the plain recipe, or no tokenizer.json
    except Exception:  # pylint: disable=broad-except
        return
    if float(abs(expected - found).max()) <= TOLERANCE:
        onnx_plain.mark_verified(path, folder)


def load(model, cache_dir=None, model_digest=None, threads=None, folder=None, providers=None):
    """An OnnxSentenceModel whose vectors match torch's on PROBE; OnnxUnavailable saying why not.
    With cache_dir and folder (the model's path), the export is also marked for load_plain when
    the torch-free path gives the same vectors."""
    try:
        import onnxruntime  # noqa: F401  pylint: disable=unused-import
        # torch's exporter needs onnx
        import onnx  # noqa: F401  pylint: disable=unused-import
    except ImportError as exc:
        raise OnnxUnavailable("onnxruntime/onnx not installed (%s)" % exc) from None
    if threads is None:
        threads = default_threads()
    try:
        if cache_dir:
            graph = cached_export(model, cache_dir, model_digest)
        else:
            buffer = io.BytesIO()
            export(model, buffer)
            graph = buffer.getvalue()
        onnx_model = OnnxSentenceModel(model, graph, threads, providers)
        expected = model.encode(PROBE, normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False)
        found = onnx_model.encode(PROBE)
    except OnnxUnavailable:
        raise
    except Exception as exc:  # exporter or runtime failure of any kind: torch does the work
        raise OnnxUnavailable("export or load failed: %s: %s" % (type(exc).__name__, exc)) from exc
    difference = float(abs(expected - found).max())
    if difference > TOLERANCE:
        raise OnnxUnavailable("its vectors differ from torch's by %.2g (> %g) on the probe" % (difference, TOLERANCE))
    if cache_dir and folder:
        verify_plain(model, folder, graph, expected, threads, providers)
    return onnx_model
