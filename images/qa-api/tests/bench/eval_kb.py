"""Retrieval quality on an evaluation set: per mode and language, recall@1, recall@5 and MRR of
the answer passage, and the share of questions whose answer passage reaches the model.

  python -m tests.bench.eval_kb --corpus DIR --questions FILE [--top-k 3 ...]

(inside the qa-api test image: `make eval-kb` mounts tests/eval/ and passes the role defaults).
DIR holds zh/ and en/ (only those are indexed: SOURCES.md and copyright/ are not documents);
FILE is YAML {"questions": [{id, question, language, expected_source, answer}]}. A passage
answers a question when it comes from expected_source and contains the exact answer.

"Reaches the model" follows a chat request with the service's defaults step by step
(qa_api/chat.py): retrieve top_k passages, fit them with build_messages into
context_tokens - max_tokens, and look for the answer in the text actually sent (a passage
cut to fit may lose it). Prints one JSON object; progress goes to stderr.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import yaml

from qa_api.kb import models
from qa_api.kb.embedder import load_embedder
from qa_api.kb.store import load_kb, service_model
from qa_api.prompt import build_messages
from qa_api.retrieval import MODES, Retriever
from tests.bench.recall import build_kb

LANGUAGES = ("zh", "en")


def load_questions(path):
    with open(path, encoding="utf-8") as handle:
        questions = yaml.safe_load(handle)["questions"]
    for q in questions:
        missing = {"id", "question", "language", "expected_source", "answer"} - set(q)
        if missing:
            raise SystemExit("question %s lacks %s" % (q.get("id"), ", ".join(sorted(missing))))
    return questions


def copy_documents(corpus, docs):
    for lang in LANGUAGES:
        shutil.copytree(os.path.join(corpus, lang), os.path.join(docs, lang))
    return docs


def answers(q, text, source):
    return source == q["expected_source"] and q["answer"] in text


def score(retriever, q, depth, top_k, budget, focused=True):
    """-> (rank of the first answering passage in the top depth or None, in the served top_k,
    reached the model) for one question."""
    rank = next((i for i, h in enumerate(retriever.retrieve(q["question"], depth), 1)
                 if answers(q, h["text"], h["source"])), None)
    hits = retriever.retrieve(q["question"], top_k)  # what chat.py asks for
    in_top_k = any(answers(q, h["text"], h["source"]) for h in hits)
    _messages, sent = build_messages([{"role": "user", "content": q["question"]}], hits, budget, focused)
    reached = any(answers(q, h["sent"], h["source"]) for h in sent)
    return rank, in_top_k, reached


def summarize(rows):
    n = len(rows)
    if not n:
        return {"n": 0}

    def share(hits):
        return round(sum(hits) / n, 3)

    return {"n": n,
            "recall@1": share(r[0] == 1 for r in rows),
            "recall@5": share(r[0] is not None and r[0] <= 5 for r in rows),
            "mrr": round(sum(1.0 / r[0] for r in rows if r[0]) / n, 3),
            "in_top_k": share(r[1] for r in rows),
            "reached_model": share(r[2] for r in rows)}


def evaluate(kb, embedder, questions, args):
    budget = args.context_tokens - args.max_tokens if args.context_tokens else None
    modes = {}
    for mode in MODES:
        retriever = Retriever(kb, embedder, mode, args.candidates)
        started = time.monotonic()
        rows = {q["id"]: score(retriever, q, args.depth, args.top_k, budget, not args.no_focus)
                for q in questions}
        elapsed = time.monotonic() - started
        result = {lang: summarize([rows[q["id"]] for q in questions if q["language"] == lang])
                  for lang in LANGUAGES}
        result["all"] = summarize(list(rows.values()))
        # two retrievals per question (the ranking to depth, then top_k as chat.py does)
        result["ms_per_query"] = round(elapsed * 1000 / (2 * len(questions)), 1)
        result["not_reached"] = sorted(i for i, r in rows.items() if not r[2])
        modes[mode] = result
        print("%s: done in %.1fs" % (mode, elapsed), file=sys.stderr)
    return modes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--questions", required=True)
    # the service's and the knowledge_base role's defaults; make eval-kb passes the roles' values
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--context-tokens", type=int, default=2048)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--chunk-size", type=int, default=600)
    parser.add_argument("--chunk-overlap", type=int, default=80)
    parser.add_argument("--embed-cache", help="a lasting embedding cache (sqlite) for repeated runs: "
                        "the build embeds only chunks it has not seen (default: a fresh one)")
    parser.add_argument("--no-focus", action="store_true",
                        help="cut passages that do not fit at their beginning (before focus)")
    parser.add_argument("--embed-model", default=models.AUTO,
                        help="auto (the builder picks from the documents, as the roles do) or a model folder")
    parser.add_argument("--mode", default="hybrid", help="the service's mode, judged by --goal")
    parser.add_argument("--depth", type=int, default=20, help="ranks looked at for MRR")
    parser.add_argument("--goal", type=float, default=0.75,
                        help="share of Chinese questions whose answer must reach the model")
    args = parser.parse_args(argv)
    questions = load_questions(args.questions)
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as root:
        docs = copy_documents(args.corpus, os.path.join(root, "docs"))
        started = time.monotonic()
        name = models.AUTO if args.embed_model == models.AUTO else \
            models.bundled_name(args.embed_model) or os.path.basename(args.embed_model.rstrip("/"))
        kb_dir, manifest = build_kb(root, args.chunk_size, args.chunk_overlap, docs=docs,
                                    embed_model=args.embed_model, embed_name=name,
                                    cache=args.embed_cache)
        build_seconds = time.monotonic() - started
        print("built %d chunks in %.1fs" % (manifest["chunk_count"], build_seconds),
              file=sys.stderr)
        # what the service does: with auto, the model the manifest names
        model_path, name = service_model(manifest, args.embed_model, name)
        embedder = load_embedder(model_path, name)
        kb = load_kb(kb_dir, manifest, manifest["checksum"], name, embedder.dim)
        modes = evaluate(kb, embedder, questions, args)
        # an answer cut in two by a chunk boundary can never be found: counted as a miss, listed here
        unanswerable = sorted(q["id"] for q in questions
                              if not any(answers(q, c["text"], c["source"]) for c in kb.chunks))
    reached_zh = modes[args.mode]["zh"].get("reached_model", 0.0)
    print(json.dumps({
        "corpus": {"documents": manifest["doc_count"],
                   "chunks": len(kb.chunks),
                   "questions": {lang: sum(q["language"] == lang for q in questions)
                                 for lang in LANGUAGES}},
        "settings": {"embedding": name, "embedding_setting": args.embed_model,
                     "cjk_share": (manifest["embedding"].get("selection") or {}).get("cjk_share"),
                     "top_k": args.top_k,
                     "prompt_budget": args.context_tokens - args.max_tokens,
                     "context_tokens": args.context_tokens, "max_tokens": args.max_tokens,
                     "candidates": args.candidates, "chunk_size": args.chunk_size,
                     "chunk_overlap": args.chunk_overlap, "focus": not args.no_focus,
                     "mrr_depth": args.depth},
        "build_seconds": round(build_seconds, 1),
        "unanswerable": unanswerable,
        "modes": modes,
        "goal": {"mode": args.mode, "zh_reached_model_min": args.goal,
                 "zh_reached_model": reached_zh, "met": reached_zh >= args.goal},
    }, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
