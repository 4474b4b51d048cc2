"""Long passages against the REAL llama.cpp server (n_ctx 2048): the prompt is fitted.

Without fitting (QA_LLM_CONTEXT_TOKENS=0) the same request overflows the model's
context and fails; with the default it is answered and cites what it sent.
"""

import httpx
import pytest

from qa_api.prompt import build_messages, estimate_tokens
from tests.conftest import needs_llm, run_build, running_app, settings_for
from tests.sse import parse_sse, stream_text

pytestmark = needs_llm

PLACES = ["北京", "上海", "深圳", "广州", "成都", "杭州", "武汉", "西安"]
RULE = ("{place}办公室的差旅报销规定：员工出差产生的交通、住宿和餐饮费用，在提交发票并经部门经理审批后"
        "可以报销；住宿标准为每晚不超过{amount}元，超出部分由员工自行承担，特殊情况需财务总监书面批准。")
QUESTION = "出差住宿每晚的报销标准是多少？"


def long_chinese_docs(root):
    root.mkdir()
    for i, place in enumerate(PLACES):
        text = "".join(RULE.format(place=place, amount=400 + 50 * i + k) for k in range(6))
        (root / ("travel-%d.txt" % i)).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def long_kb(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    out = root / "kb" / "travel" / "v1"
    run = run_build(long_chinese_docs(root / "docs"), out, root / "cache.sqlite",
                    chunk_size=1500, chunk_overlap=0, name="travel")
    assert run.code == 0, run.stderr
    from qa_api.kb.store import finalize
    finalize(str(out))
    return str(out)


def real_token_count(llm_base_url, text):
    base = llm_base_url[:-3] if llm_base_url.endswith("/v1") else llm_base_url
    response = httpx.post(base + "/extras/tokenize/count", json={"input": text}, timeout=30)
    if response.status_code == 404:
        pytest.skip("the inference server has no llama.cpp tokenize endpoint")
    response.raise_for_status()
    return response.json()["count"]


def test_estimate_is_never_below_the_models_tokenizer(llm_base_url):
    samples = [RULE.format(place=p, amount=500) for p in PLACES] + [
        "Employees get 25 days of paid leave; the VPN uses UDP port 1194 (OpenVPN).",
        "混合 text: 报销 within 30 days, 发票 required. 年假15天。",
    ]
    for text in samples:
        assert estimate_tokens(text) >= real_token_count(llm_base_url, text), text


def ask(stream=False):
    return {"model": "smollm2-135m-instruct", "stream": stream, "max_tokens": 64,
            "messages": [{"role": "user", "content": QUESTION}]}


def test_without_fitting_the_prompt_overflows_the_model(long_kb, llm_base_url):
    settings = settings_for(long_kb, llm_base_url=llm_base_url, top_k=8, context_tokens=0)
    with running_app(settings) as client:
        response = client.post("/v1/chat/completions", json=ask())
    assert response.status_code == 502
    assert "context" in response.json()["error"]["message"].lower()


def test_fitted_prompt_is_answered_and_cites_only_what_it_sent(long_kb, llm_base_url):
    settings = settings_for(long_kb, llm_base_url=llm_base_url, top_k=8, context_tokens=2048)
    with running_app(settings) as client:
        plain = client.post("/v1/chat/completions", json=ask())
        assert plain.status_code == 200, plain.text
        sources = plain.json()["sources"]
        assert 1 <= len(sources) < 8
        # The same retrieval, fitted the same way, names the same passages.
        retriever = client.app.state.chat.state.retriever
        hits = retriever.retrieve(QUESTION, 8)
        _sent, used = build_messages([{"role": "user", "content": QUESTION}], hits, 2048 - 64)
        assert [s["source"] for s in sources] == [h["source"] for h in used]

        with client.stream("POST", "/v1/chat/completions", json=ask(stream=True)) as streamed:
            assert streamed.status_code == 200
            events = parse_sse(streamed.read().decode("utf-8"))
        assert events[-1] == "[DONE]"
        assert "Sources: travel-" in stream_text(events)


def test_a_context_set_too_large_is_caught_by_the_server_and_retried_smaller(
        long_kb, llm_base_url, caplog):
    # 4096 claimed, 2048 real: the first prompt overflows, the retry with half fits.
    settings = settings_for(long_kb, llm_base_url=llm_base_url, top_k=8, context_tokens=4096)
    with running_app(settings) as client:
        response = client.post("/v1/chat/completions", json=ask())
        assert response.status_code == 200, response.text
        metrics = client.get("/metrics").text
    assert "qa_llm_errors_total 0.0" in metrics
    assert "prompt over the model's context, retrying with less" in caplog.text


def test_chinese_estimate_is_safe_and_close_to_the_real_count(llm_base_url):
    from tests.bench.corpus import DOCS

    samples = list(DOCS.values()) + [
        "龘靐齉爩麤",  # rare characters: the tokenizer's byte fallback, 3 tokens each
        "魑魅魍魉，饕餮。",
        "ｆｕｌｌ－ｗｉｄｔｈ：ＡＢＣ１２３，\u201c引号\u201d（括号）【方括号】",
        "使用 systemctl restart nginx 重启；配置在 /etc/nginx/conf.d/qa.conf，端口 8443。",
        "The VPN uses UDP port 1194; see https://vpn.example.cn/help?lang=zh-CN#setup.",
    ]
    for text in samples:
        real = real_token_count(llm_base_url, text)
        assert estimate_tokens(text) >= real, text
    zh = DOCS["zh/security.md"] + DOCS["zh/backup.md"]
    real = real_token_count(llm_base_url, zh)
    # the old 3-per-character estimate was ~1.9x the real count: it sent half the Chinese it could
    assert estimate_tokens(zh) <= 1.25 * real, (estimate_tokens(zh), real)
