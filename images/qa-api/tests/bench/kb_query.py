"""Query latency of a KB version built by qa_api.kb.build, as the service retrieves: load the
model and the version once, then time Retriever.retrieve per question in each mode.

  python -m tests.bench.kb_query --kb DIR --model PATH --questions FILE --top-k 3 --candidates 20

Prints ONE JSON line on stdout: phase timings (s) and per-question latencies (ms) by mode.
"""

import argparse
import json
import os
import sys

from tests.bench.kb_seed import Clock, timed_queries


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.kb_query",
                                     description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--kb", required=True, help="a KB version directory (finalized here)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--embed-name", default="all-MiniLM-L6-v2")
    parser.add_argument("--questions", required=True)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=20)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    real_stdout = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)

    import yaml

    with open(args.questions, encoding="utf-8") as handle:
        questions = [q["question"] for q in yaml.safe_load(handle)["questions"]]
    from qa_api.kb.store import finalize

    manifest = finalize(args.kb)  # kb_build's step after the builder: not a query cost
    clock = Clock()
    from qa_api.kb.embedder import load_embedder
    from qa_api.kb.store import load_kb
    from qa_api.retrieval import MODES, Retriever

    clock.lap("import")
    embedder = load_embedder(args.model, args.embed_name)
    clock.lap("load_model")
    kb = load_kb(args.kb, manifest, manifest["checksum"], args.embed_name, embedder.dim)
    clock.lap("load_index")
    latencies = {}
    for mode in MODES:
        retriever = Retriever(kb, embedder, mode, args.candidates)
        latencies[mode] = timed_queries(lambda q, r=retriever: r.retrieve(q, args.top_k), questions)
        clock.lap("%s_queries" % mode)
    real_stdout.write(json.dumps({"ok": True, "chunks": len(kb.chunks), "timings": clock.phases,
                                  "latency_ms": latencies}) + "\n")
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
