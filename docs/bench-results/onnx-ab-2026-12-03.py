"""A/B of the embedding alone, same process, same chunks, alternating: torch vs ONNX Runtime
(spinning off: the committed setting) vs ONNX Runtime (spinning on). Not part of the repo."""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from qa_api.config import default_embed_model
from qa_api.kb import onnx_model
from qa_api.kb.embedder import SentenceTransformerEmbedder
from qa_api.kb.splitter import RecursiveCharacterSplitter
from qa_api.kb.loaders import load_document
path = default_embed_model()
docs = []
for root, _d, files in os.walk("/corpus"):
    for f in sorted(files):
        if f.endswith(".md"):
            docs.append(load_document(os.path.join(root, f), f))
sp = RecursiveCharacterSplitter(600, 80)
chunks = [c for d in docs for c in sp.split_text(d)]
n = int(sys.argv[1]) if len(sys.argv) > 1 else 240
chunks = chunks[::max(1, len(chunks) // n)][:n]
t = SentenceTransformerEmbedder(path, "m", runtime="torch")
o = SentenceTransformerEmbedder(path, "m", runtime="onnx", onnx_dir="/tmp/onnx", digest="x")
graph = [os.path.join("/tmp/onnx", f) for f in os.listdir("/tmp/onnx")][0]
spin = SentenceTransformerEmbedder(path, "m", runtime="torch")
so = ort.SessionOptions()
so.intra_op_num_threads = 2
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
m = onnx_model.OnnxSentenceModel(t.model, graph, 2)
m.session = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])  # spinning on (ORT default)
spin.onnx, spin.runtime = m, "onnx-spin"
res = {k: [] for k in ("torch", "onnx", "onnx-spin")}
ref = None
for rep in range(3):
    for name, e in (("torch", t), ("onnx", o), ("onnx-spin", spin)):
        l0 = os.getloadavg()[0]
        s = time.perf_counter()
        v = e.encode(chunks, batch_size=32)
        d = time.perf_counter() - s
        ref = v if ref is None else ref
        res[name].append({"s": round(d, 2), "load1": round(l0, 2), "maxabs_vs_torch": float(np.abs(v - ref).max())})
        print(name, rep, res[name][-1], file=sys.stderr, flush=True)
print(json.dumps({"chunks": len(chunks), "threads": onnx_model.container_cpus(len(os.sched_getaffinity(0)), *onnx_model.cpu_quota()), "runs": res}))
