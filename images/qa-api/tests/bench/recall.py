"""recall@k of dense, lexical and hybrid retrieval on the bilingual sample corpus, same run.

  python -m tests.bench.recall [--chunk-size 200] [--k 5]

(inside the qa-api image; it builds a KB with the real builder CLI in a temp dir).
"""

import argparse
import sys
import tempfile
import time

from qa_api.config import default_embed_model
from qa_api.kb.embedder import load_embedder
from qa_api.kb.store import finalize, load_kb
from qa_api.retrieval import MODES, Retriever
from tests.bench.corpus import QUESTIONS, recall_at, write_corpus
from tests.conftest import EMBED_NAME, run_build


def build_kb(root, chunk_size, chunk_overlap, docs=None, embed_model=None, embed_name=None, cache=None):
    """Build a KB version under root with the real builder CLI (docs: default the sample
    corpus; embed_model: default the bundled English model, or auto); -> (its directory, its
    finalized manifest)."""
    out = root + "/kb/bench/v1"
    run = run_build(docs or write_corpus(root + "/docs"), out, cache or root + "/cache.sqlite",
                    chunk_size=chunk_size, chunk_overlap=chunk_overlap, name="bench",
                    embed_model=embed_model, embed_name=embed_name,
                    timeout=3600)  # e5 on a busy 2-core machine: minutes
    if run.code != 0:
        raise SystemExit("build failed: %s %s" % (run.stdout, run.stderr))
    manifest = finalize(out)
    return out, manifest


def measure(kb, embedder, k):
    """{mode: {"all", "zh", "en", "ms"}}"""
    rows = {}
    for mode in MODES:
        retriever = Retriever(kb, embedder, mode)
        started = time.monotonic()
        row = {"all": recall_at(retriever.retrieve, QUESTIONS, k)}
        row["ms"] = (time.monotonic() - started) * 1000 / len(QUESTIONS)
        for lang in ("zh", "en"):
            row[lang] = recall_at(retriever.retrieve, [q for q in QUESTIONS if q[3] == lang], k)
        rows[mode] = row
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--chunk-size", type=int, default=200)
    parser.add_argument("--chunk-overlap", type=int, default=20)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as root:
        kb_dir, manifest = build_kb(root, args.chunk_size, args.chunk_overlap)
        embedder = load_embedder(default_embed_model(), EMBED_NAME)
        kb = load_kb(kb_dir, manifest, manifest["checksum"], EMBED_NAME, embedder.dim)
        rows = measure(kb, embedder, args.k)
    print("%d questions (%d zh, %d en), %d chunks, chunk size %d"
          % (len(QUESTIONS), sum(q[3] == "zh" for q in QUESTIONS), sum(q[3] == "en" for q in QUESTIONS),
             len(kb.chunks), args.chunk_size))
    print("%-8s %8s %8s %8s %10s" % ("mode", "R@%d" % args.k, "zh", "en", "ms/query"))
    for mode, row in rows.items():
        print("%-8s %8.2f %8.2f %8.2f %10.1f" % (mode, row["all"], row["zh"], row["en"], row["ms"]))
    dense = rows["dense"]["all"]
    ratio = "%.2f" % (rows["hybrid"]["all"] / dense) if dense else "inf (dense found none)"
    print("hybrid / dense recall@%d: %s" % (args.k, ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
