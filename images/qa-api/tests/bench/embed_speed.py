"""Embedding speed of the bundled models on the same chunks and questions, one after the other.

  python -m tests.bench.embed_speed --corpus DIR --questions FILE [--chunk-size 600 --rounds 2]

(in the qa-api test image, like eval_kb: DIR holds zh/ and en/). Chunks are the builder's
(same loader and splitter); each model embeds all of them (passages, batch 32, as the builder
does) and each question alone (as the service does), best of --rounds after a warm-up. Prints
one JSON object: chunks/s, ms per query, and the ratios multilingual-e5-small / all-MiniLM-L6-v2.
"""

import argparse
import json
import os
import sys
import time

from qa_api.kb import models
from qa_api.kb.embedder import load_embedder
from qa_api.kb.loaders import doc_type, load_document
from qa_api.kb.splitter import RecursiveCharacterSplitter
from tests.bench.eval_kb import LANGUAGES, load_questions


def corpus_chunks(corpus, chunk_size, chunk_overlap):
    splitter = RecursiveCharacterSplitter(chunk_size, chunk_overlap)
    chunks = []
    for lang in LANGUAGES:
        folder = os.path.join(corpus, lang)
        for name in sorted(os.listdir(folder)):
            if doc_type(name):
                chunks.extend(splitter.split_text(load_document(os.path.join(folder, name), name)))
    return chunks


def best_of(rounds, work):
    times = []
    for _round in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(name, chunks, questions, rounds):
    started = time.perf_counter()
    embedder = load_embedder(models.bundled_path(name), name)
    embedder.encode_query("warm-up")
    load_seconds = time.perf_counter() - started
    passages = best_of(rounds, lambda: embedder.encode(chunks, batch_size=32))
    queries = best_of(rounds, lambda: [embedder.encode_query(q) for q in questions])
    return {"backend": embedder.backend, "load_s": round(load_seconds, 2),
            "passages_s": round(passages, 2), "chunks_per_s": round(len(chunks) / passages, 1),
            "ms_per_query": round(queries * 1000 / len(questions), 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--questions", required=True)
    parser.add_argument("--chunk-size", type=int, default=600)
    parser.add_argument("--chunk-overlap", type=int, default=80)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    chunks = corpus_chunks(args.corpus, args.chunk_size, args.chunk_overlap)
    questions = [q["question"] for q in load_questions(args.questions)]
    print("%d chunks (%d characters), %d questions" % (len(chunks), sum(map(len, chunks)), len(questions)),
          file=sys.stderr)
    result = {name: measure(name, chunks, questions, args.rounds)
              for name in (models.ENGLISH, models.MULTILINGUAL)}
    e5, minilm = result[models.MULTILINGUAL], result[models.ENGLISH]
    print(json.dumps({
        "chunks": len(chunks), "questions": len(questions), "cpus": os.cpu_count(),
        "models": result,
        # > 1: e5 takes that many times as long
        "time_ratio_e5_over_minilm": {
            "passages": round(e5["passages_s"] / minilm["passages_s"], 2),
            "query": round(e5["ms_per_query"] / minilm["ms_per_query"], 2)},
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
