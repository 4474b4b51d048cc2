"""Ask the deployed service a real question over HTTPS with the official openai SDK.

Exits non-zero unless both the non-streaming and the streaming answer cite a file
from examples/docs/. Used by `make deploy` and by the Molecule verify step.
"""
import argparse
import os
import pathlib
import ssl
import sys

import httpx2
from openai import OpenAI

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--service", default=os.environ.get("LLMOPS_SERVICE", "qa"))
    ap.add_argument("--url", default=None, help="default https://127.0.0.1:8443/v1")
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--question", default="How many days do employees have to submit an expense claim?")
    ap.add_argument("--cacert", default=None, help="default /var/lib/llmops/<service>/gateway/tls/gateway.crt")
    ap.add_argument("--api-key-file", default=None, help="default ~/.config/llmops/<service>/api_key")
    ap.add_argument("--max-tokens", type=int, default=96)
    args = ap.parse_args()

    url = args.url or "https://127.0.0.1:%d/v1" % args.port
    cacert = args.cacert or "/var/lib/llmops/%s/gateway/tls/gateway.crt" % args.service
    key_file = args.api_key_file or os.path.expanduser("~/.config/llmops/%s/api_key" % args.service)
    api_key = pathlib.Path(key_file).read_text().split()[0]
    docs = {p.name for p in (ROOT / "examples" / "docs").iterdir()}

    client = OpenAI(base_url=url, api_key=api_key, http_client=httpx2.Client(verify=ssl.create_default_context(cafile=cacert), timeout=180))
    model = client.models.list().data[0].id
    messages = [{"role": "user", "content": args.question}]

    raw = client.chat.completions.with_raw_response.create(model=model, messages=messages, max_tokens=args.max_tokens)
    reply = raw.parse()
    text = reply.choices[0].message.content
    sources = [s["source"] for s in (reply.model_extra or {}).get("sources", [])]
    print("Q: %s\nA (color %s, cache %s): %s\n" % (args.question, raw.headers.get("x-qa-color"),
                                                   raw.headers.get("x-cache"), text))

    streamed, stream_sources, chunks = [], [], 0
    for chunk in client.chat.completions.create(model=model, messages=messages,
                                                max_tokens=args.max_tokens, stream=True):
        chunks += 1
        if chunk.choices and chunk.choices[0].delta.content:
            streamed.append(chunk.choices[0].delta.content)
        stream_sources += [s["source"] for s in (chunk.model_extra or {}).get("sources", []) or []]
    print("streamed %d chunks: %s" % (chunks, "".join(streamed)))

    cited = [d for d in docs if d in text or d in sources]
    cited_stream = [d for d in docs if d in "".join(streamed) or d in stream_sources]
    if not cited or not cited_stream:
        sys.exit("FAIL: the answer does not cite a file of examples/docs (sources %s / %s)" % (sources, stream_sources))
    print("OK: cited %s (non-streaming) and %s (streaming)" % (sorted(cited), sorted(cited_stream)))


if __name__ == "__main__":
    main()
