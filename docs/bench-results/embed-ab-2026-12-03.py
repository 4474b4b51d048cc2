"""A/B of the embedding alone (same process, same chunks, alternating): torch; the torch-free
ONNX path with spinning off / on, without the memory arena; batch sizes. argv: chunks, set (runtime or batch).
Run: docker run --rm --network none --cpus 2 -v $PWD/tests/eval/corpus:/corpus:ro -v $PWD/docs/bench-results:/exp:ro
<qa-api image> python /exp/embed-ab-2026-12-03.py 240 runtime"""
import glob
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

from qa_api.config import default_embed_model
from qa_api.kb.embedder import SentenceTransformerEmbedder
from qa_api.kb.loaders import load_document
from qa_api.kb.splitter import RecursiveCharacterSplitter

path = default_embed_model()
docs = []
for root, _d, files in os.walk("/corpus"):
    for f in sorted(files):
        if "copyright" in root or not f.endswith((".md", ".html", ".txt")):
            continue
        docs.append(load_document(os.path.join(root, f), os.path.relpath(os.path.join(root, f), "/corpus")))
sp = RecursiveCharacterSplitter(600, 80)
chunks = [c for d in docs for c in sp.split_text(d)]
n = int(sys.argv[1]) if len(sys.argv) > 1 else 240
chunks = chunks[::max(1, len(chunks) // n)][:n]
SentenceTransformerEmbedder(path, "m", runtime="onnx", onnx_dir="/tmp/onnx", digest="x")  # export + sidecar
graph = glob.glob("/tmp/onnx/*.onnx")[0]
t = SentenceTransformerEmbedder(path, "m", runtime="torch")
plain = SentenceTransformerEmbedder(path, "m", runtime="onnx", onnx_dir="/tmp/onnx", digest="x")
assert plain.plain is not None
spin = SentenceTransformerEmbedder(path, "m", runtime="onnx", onnx_dir="/tmp/onnx", digest="x")
so = ort.SessionOptions()
so.intra_op_num_threads = 2
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
spin.plain.session = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])
noarena = SentenceTransformerEmbedder(path, "m", runtime="onnx", onnx_dir="/tmp/onnx", digest="x")
so2 = ort.SessionOptions()
so2.intra_op_num_threads = 2
so2.inter_op_num_threads = 1
so2.enable_cpu_mem_arena = False
so2.add_session_config_entry("session.intra_op.allow_spinning", "0")
noarena.plain.session = ort.InferenceSession(graph, so2, providers=["CPUExecutionProvider"])
variants = [("torch", t, 32), ("plain", plain, 32), ("plain-spin", spin, 32), ("plain-noarena", noarena, 32),
            ("plain-16", plain, 16), ("plain-64", plain, 64)]
if len(sys.argv) > 2 and sys.argv[2] == "batch":
    variants = [("torch-32", t, 32), ("torch-16", t, 16), ("plain-16", plain, 16), ("plain-12", plain, 12),
                ("plain-8", plain, 8), ("plain-4", plain, 4)]
res = {name: [] for name, _e, _b in variants}
ref = None
for rep in range(3):
    for name, e, b in variants:
        l0 = os.getloadavg()[0]
        s = time.perf_counter()
        v = e.encode(chunks, batch_size=b)
        d = time.perf_counter() - s
        ref = v if ref is None else ref
        res[name].append({"s": round(d, 2), "load1": round(l0, 2), "maxabs_vs_torch": float(np.abs(v - ref).max())})
        print(name, rep, res[name][-1], file=sys.stderr, flush=True)
print(json.dumps({"chunks": len(chunks), "runs": res}))
