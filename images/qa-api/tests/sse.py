"""Parse an OpenAI server-sent-event stream the way a client does."""

import json


def parse_sse(text):
    """[event JSON or the string "[DONE]"] in order."""
    events = []
    for block in text.split("\n\n"):
        block = block.strip()
        if not block:
            continue
        assert block.startswith("data: "), "not an SSE data line: %r" % block[:80]
        data = block[len("data: "):]
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def stream_text(events):
    return "".join(e["choices"][0]["delta"].get("content") or ""
                   for e in events if isinstance(e, dict) and e.get("choices"))
