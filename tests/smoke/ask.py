"""Ask the deployed service a real question over HTTPS with the official openai SDK.

Exits non-zero unless both the non-streaming and the streaming answer state an
expected fact (in the answer text, not the Sources line) and cite a file from
examples/docs/. The question and its facts come from the gate's question set
(examples/gate/handbook.yml) unless given with --question and --expect. Used by
`make deploy` and by the Molecule verify step.
"""
import argparse
import os
import pathlib
import ssl
import sys

import httpx2
import yaml
from openai import OpenAI

ROOT = pathlib.Path(__file__).resolve().parents[2]
QUESTIONS = ROOT / "examples" / "gate" / "handbook.yml"


def load_probe():
    """The gate's scoring (plugins/module_utils/_probe.py), so smoke test and gate agree on a fact."""
    # The checkout is the collection through its committed link collections/ (ansible.cfg).
    if str(ROOT / "collections") not in sys.path:
        sys.path.insert(0, str(ROOT / "collections"))
    from ansible_collections.llmops.bluegreen.plugins.module_utils import _probe  # pylint: disable=import-outside-toplevel
    return _probe


def expected_facts(question, expect, questions_file):
    """--expect (alternatives of one fact), else the facts of the question in the question set."""
    if expect:
        return [expect]
    for item in yaml.safe_load(pathlib.Path(questions_file).read_text(encoding="utf-8"))["questions"]:
        if item["question"] == question:
            return item["expect_facts"]
    sys.exit("FAIL: %r is not in %s: give the facts its answer must state with --expect" % (question, questions_file))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--service", default=os.environ.get("LLMOPS_SERVICE", "qa"))
    ap.add_argument("--url", default=None, help="default https://127.0.0.1:8443/v1")
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--question", default=None, help="default: the first question of --questions-file")
    ap.add_argument("--expect", action="append", default=[],
                    help="a fact the answer must state (repeat for alternatives); default: the question's expect_facts")
    ap.add_argument("--questions-file", default=str(QUESTIONS))
    ap.add_argument("--cacert", default=None, help="default /var/lib/llmops/<service>/gateway/tls/gateway.crt")
    ap.add_argument("--api-key-file", default=None, help="default ~/.config/llmops/<service>/api_key")
    ap.add_argument("--max-tokens", type=int, default=96)
    args = ap.parse_args()
    if args.question is None:
        args.question = yaml.safe_load(pathlib.Path(args.questions_file).read_text(encoding="utf-8"))["questions"][0]["question"]
    facts = expected_facts(args.question, args.expect, args.questions_file)
    probe = load_probe()

    url = args.url or "https://127.0.0.1:%d/v1" % args.port
    cacert = args.cacert or "/var/lib/llmops/%s/gateway/tls/gateway.crt" % args.service
    key_file = args.api_key_file or os.path.expanduser("~/.config/llmops/%s/api_key" % args.service)
    api_key = pathlib.Path(key_file).read_text().split()[0]
    docs = {p.name for p in (ROOT / "examples" / "docs").iterdir()}

    client = OpenAI(base_url=url, api_key=api_key, http_client=httpx2.Client(verify=ssl.create_default_context(cafile=cacert), timeout=180))
    model = client.models.list().data[0].id
    messages = [{"role": "user", "content": args.question}]

    # Temperature 0: the facts were measured that way (examples/gate/handbook.yml).
    raw = client.chat.completions.with_raw_response.create(model=model, messages=messages, max_tokens=args.max_tokens,
                                                           temperature=0)
    reply = raw.parse()
    text = reply.choices[0].message.content
    sources = [s["source"] for s in (reply.model_extra or {}).get("sources", [])]
    print("Q: %s\nA (color %s, cache %s): %s\n" % (args.question, raw.headers.get("x-qa-color"),
                                                   raw.headers.get("x-cache"), text))

    streamed, stream_sources, chunks = [], [], 0
    for chunk in client.chat.completions.create(model=model, messages=messages,
                                                max_tokens=args.max_tokens, temperature=0, stream=True):
        chunks += 1
        if chunk.choices and chunk.choices[0].delta.content:
            streamed.append(chunk.choices[0].delta.content)
        stream_sources += [s["source"] for s in (chunk.model_extra or {}).get("sources", []) or []]
    print("streamed %d chunks: %s" % (chunks, "".join(streamed)))

    question = {"question": args.question, "expect_facts": facts}
    for kind, answer in (("non-streaming", text), ("streaming", "".join(streamed))):
        row = probe.score_answer(question, answer)
        if row["facts_missing"]:
            sys.exit("FAIL: the %s answer does not state %s: %r" % (kind, row["facts_missing"], row["answer"]))
    cited = [d for d in docs if d in text or d in sources]
    cited_stream = [d for d in docs if d in "".join(streamed) or d in stream_sources]
    if not cited or not cited_stream:
        sys.exit("FAIL: the answer does not cite a file of examples/docs (sources %s / %s)" % (sources, stream_sources))
    print("OK: stated %s; cited %s (non-streaming) and %s (streaming)"
          % (row["facts_found"], sorted(cited), sorted(cited_stream)))


if __name__ == "__main__":
    main()
