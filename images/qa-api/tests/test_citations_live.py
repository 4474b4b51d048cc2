"""Citations a user can check: each source carries the passage text sent and its place."""

import uuid

from tests.conftest import needs_llm, running_app, settings_for
from tests.sse import parse_sse

pytestmark = needs_llm
RUN = uuid.uuid4().hex[:8]
BYPASS = {"X-QA-Cache": "bypass"}


def ask(question, **extra):
    return dict({"model": "smollm2-135m-instruct", "max_tokens": 16,
                 "messages": [{"role": "user", "content": "%s (%s)" % (question, RUN)}]}, **extra)


def assert_checkable(sources, chunks):
    assert sources
    by_place = {(c["source"], c["chunk"]): c for c in chunks}
    for source in sources:
        chunk = by_place[(source["source"], source["chunk"])]
        # the passage as sent (whole, or cut from its start when the context was short)
        assert source["text"] and chunk["text"].startswith(source["text"]), source
        assert source["heading"] == chunk["heading"]
        assert isinstance(source["score"], float)


def test_sources_carry_passage_text_and_heading_in_both_forms(corpus_kb, llm_base_url):
    settings = settings_for(corpus_kb["dir"], llm_base_url=llm_base_url)
    with running_app(settings) as client:
        chunks = client.app.state.service.kb.chunks
        assert client.get("/health").json()["retrieval"] == {"mode": "hybrid", "lexical_index": "stored", "rerank": None}
        plain = client.post("/v1/chat/completions", headers=BYPASS,
                            json=ask("How long is sick leave before a doctor's certificate?"))
        assert plain.status_code == 200, plain.text
        sources = plain.json()["sources"]
        assert_checkable(sources, chunks)
        # policy.md is one chunk, under its title
        assert any(s["source"] == "policy.md" and s["heading"] == "Leave policy"
                   for s in sources), sources

        with client.stream("POST", "/v1/chat/completions", headers=BYPASS,
                           json=ask("差旅住宿标准是多少？", stream=True)) as streamed:
            assert streamed.status_code == 200
            events = parse_sse(streamed.read().decode("utf-8"))
        assert events[-1] == "[DONE]"
        final = events[-2]
        assert final["choices"][0]["finish_reason"] and "sources" in final
        assert all("sources" not in e for e in events[:-2])
        assert_checkable(final["sources"], chunks)
        assert any(s["source"] == "expenses.txt" and "五百元" in s["text"] for s in final["sources"])
