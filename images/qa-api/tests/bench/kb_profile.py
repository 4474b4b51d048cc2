"""Where a build's embedding time goes, on the bench corpus's chunks (make bench-kb's profile):
sentence-transformers' own batching (texts sorted by characters) against the builder's
batches of similar token counts, at several batch sizes, with the padded tokens each computes
and how far the vectors and the dense top-k move.

  python -m tests.bench.kb_profile --corpus /eval/corpus --questions /eval/questions.yml \\
      [--batch-sizes 16,32,64] [--repeat 2]

Prints ONE JSON object on stdout.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import yaml

from qa_api.config import default_embed_model
from qa_api.kb.embedder import length_batches, load_embedder
from qa_api.kb.splitter import RecursiveCharacterSplitter
from tests.bench.kb_corpus import build_corpus, corpus_files


def padded_tokens(lengths, batches):
    """Tokens the model computes: each batch padded to its longest text."""
    return int(sum(max(lengths[i] for i in batch) * len(batch) for batch in batches))


def char_batches(texts, batch_size):
    """sentence-transformers' order: longest first by characters."""
    return length_batches([len(t) for t in texts], batch_size)


def best_of(repeat, run):
    times, value = [], None
    for dummy in range(repeat):
        started = time.perf_counter()
        value = run()
        times.append(time.perf_counter() - started)
    return min(times), value


def top_k(matrix, queries, k):
    return [row.tolist() for row in np.argsort(-(queries @ matrix.T), axis=1, kind="stable")[:, :k]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--questions", required=True)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--batch-sizes", default="16,32,64")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args(argv)
    real_stdout = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)

    splitter = RecursiveCharacterSplitter()
    texts = []
    with tempfile.TemporaryDirectory() as root:
        build_corpus(args.corpus, root, args.scale)
        for dirpath, _dirs, files in sorted(os.walk(root)):
            for name in sorted(files):
                with open(os.path.join(dirpath, name), encoding="utf-8") as handle:
                    texts.extend(splitter.split_text(handle.read()))
    texts = list(dict.fromkeys(texts))  # the builder embeds a text once
    embedder = load_embedder(default_embed_model(), "all-MiniLM-L6-v2")
    lengths = embedder._token_counts(texts)  # pylint: disable=protected-access
    with open(args.questions, encoding="utf-8") as handle:
        questions = [q["question"] for q in yaml.safe_load(handle)["questions"]]
    query_vectors = embedder.encode(questions)

    def st_default(batch_size):
        return np.asarray(embedder.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                                convert_to_numpy=True, show_progress_bar=False), "float32")

    reference_s, reference = best_of(args.repeat, lambda: st_default(32))
    reference_top = top_k(reference, query_vectors, args.top_k)
    rows = {"st_char_sorted_32": {"seconds": round(reference_s, 2),
                                  "padded_tokens": padded_tokens(lengths, char_batches(texts, 32))}}
    for size in [int(s) for s in args.batch_sizes.split(",")]:
        seconds, vectors = best_of(args.repeat, lambda s=size: embedder.encode(texts, batch_size=s))
        rows["token_sorted_%d" % size] = {
            "seconds": round(seconds, 2),
            "padded_tokens": padded_tokens(lengths, length_batches(lengths, size)),
            "max_abs_diff": float(np.abs(vectors - reference).max()),
            "same_dense_top_k": top_k(vectors, query_vectors, args.top_k) == reference_top}
    real_stdout.write(json.dumps({
        "files": len(corpus_files(args.corpus)) * args.scale, "chunks": len(texts),
        "tokens": int(sum(lengths)), "truncated": int(sum(1 for n in lengths if n >= embedder.model.max_seq_length)),
        "repeat": args.repeat, "embedding": rows}) + "\n")
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
