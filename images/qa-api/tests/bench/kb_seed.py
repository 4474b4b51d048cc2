"""The seed article's pipeline, the baseline of `make bench-kb`: LangChain's DirectoryLoader and
TextLoader, RecursiveCharacterTextSplitter(chunk_size=600, chunk_overlap=80),
HuggingFaceEmbeddings over a local sentence-transformers folder, FAISS.from_documents and
save_local, with the libraries' defaults everywhere else (as the article wrote it).

  python -m tests.bench.kb_seed build --docs DIR --out DIR --model PATH
  python -m tests.bench.kb_seed query --kb DIR --model PATH --questions FILE --top-k 3

Needs the bench image (tests/bench/kb-image: langchain-community, langchain-huggingface,
langchain-text-splitters, rank-bm25); the runtime qa-api image has none of them.
Prints ONE JSON line on stdout (phase timings in seconds); logs go to stderr.
The seed has no lexical index: `query` also times BM25Retriever.from_documents (rank-bm25)
over the same chunks, the cost of adding one to it.
"""

import argparse
import json
import os
import sys
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Clock:
    """Seconds of consecutive phases."""

    def __init__(self):
        self.last = time.perf_counter()
        self.phases = {}

    def lap(self, phase):
        now = time.perf_counter()
        self.phases[phase] = round(now - self.last, 3)
        self.last = now


def embeddings_for(model, clock):
    # langchain-huggingface pins huggingface-hub < 2 in its metadata; the image has 2.x and
    # HuggingFaceEmbeddings only calls sentence-transformers (tests/bench/kb-image/Dockerfile).
    warnings.filterwarnings("ignore")
    from langchain_huggingface import HuggingFaceEmbeddings

    clock.lap("import_embeddings")
    embeddings = HuggingFaceEmbeddings(model_name=model, model_kwargs={"device": "cpu"})
    clock.lap("load_model")
    return embeddings


def build(args):
    clock = Clock()
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    clock.lap("import")
    docs = DirectoryLoader(args.docs, glob="**/*.md", loader_cls=TextLoader,
                           loader_kwargs={"encoding": "utf-8"}).load()
    clock.lap("load_documents")
    splitter = RecursiveCharacterTextSplitter(chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)
    chunks = splitter.split_documents(docs)
    clock.lap("split")
    embeddings = embeddings_for(args.model, clock)
    store = FAISS.from_documents(chunks, embeddings)
    clock.lap("embed_and_index")
    store.save_local(args.out)
    clock.lap("save")
    return {"ok": True, "documents": len(docs), "chunks": len(chunks), "timings": clock.phases}


def timed_queries(search, questions, warmup=3):
    """Milliseconds of each question's search, after `warmup` untimed ones."""
    for question in questions[:warmup]:
        search(question)
    latencies = []
    for question in questions:
        started = time.perf_counter()
        search(question)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def query(args):
    import yaml

    with open(args.questions, encoding="utf-8") as handle:
        questions = [q["question"] for q in yaml.safe_load(handle)["questions"]]
    clock = Clock()
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS

    clock.lap("import")
    embeddings = embeddings_for(args.model, clock)
    store = FAISS.load_local(args.kb, embeddings, allow_dangerous_deserialization=True)
    clock.lap("load_index")
    dense = timed_queries(lambda q: store.similarity_search(q, k=args.top_k), questions)
    clock.lap("dense_queries")
    documents = list(store.docstore._dict.values())  # the chunks, as the store keeps them
    bm25 = BM25Retriever.from_documents(documents, k=args.top_k)
    clock.lap("bm25_build")
    lexical = timed_queries(bm25.invoke, questions)
    clock.lap("bm25_queries")
    return {"ok": True, "chunks": len(documents), "timings": clock.phases,
            "latency_ms": {"dense": dense, "bm25": lexical}}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.kb_seed",
                                     description=__doc__.split("\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("build")
    one.add_argument("--docs", required=True)
    one.add_argument("--out", required=True)
    one.add_argument("--chunk-size", type=int, default=600)
    one.add_argument("--chunk-overlap", type=int, default=80)
    two = sub.add_parser("query")
    two.add_argument("--kb", required=True)
    two.add_argument("--questions", required=True)
    two.add_argument("--top-k", type=int, default=3)
    for each in (one, two):
        each.add_argument("--model", required=True, help="local sentence-transformers folder")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # libraries may print on stdout: the bench reads exactly one JSON line from it
    real_stdout = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    result = build(args) if args.command == "build" else query(args)
    real_stdout.write(json.dumps(result) + "\n")
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
