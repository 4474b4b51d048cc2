"""Privacy on a real uvicorn process with a REAL inference server and a REAL Redis: PII
never reaches the process log or Redis; a sensitive word refuses a question (400
content_filter) and is cut from a streamed answer. Env from run-tests.sh."""

import os
import re
import signal
import subprocess
import sys
import uuid

import httpx
import pytest

from qa_api.privacy import redact
from tests.conftest import (REDIS_HOST, REDIS_PASSWORD, REDIS_PORT, free_port, needs_llm,
                            needs_redis, run_build)
from tests.sse import parse_sse, stream_text
from tests.test_drain_live import wait_ready

pytestmark = [needs_llm, needs_redis]

HOTLINE = "13912345678"
HELPDESK = ("# IT help desk\n\nThe IT help desk hotline is %s and its mail address is "
            "helpdesk@bank.example.cn. The desk is open from 9 to 17 on workdays.\n" % HOTLINE)
# what a client sends: every kind, in real formats
PII = {"phone": "13812345678", "phone86": "+86 150 1234 5678", "id": "11010519491231002X",
       "card": "6222021234567890128", "email": "zhang.san@bank.example.cn"}
SECRETS = list(PII.values()) + [HOTLINE, "helpdesk@bank.example.cn", "15012345678"]
WORDS = "# test list\n内幕交易\nthe\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory, llm_base_url):
    root = tmp_path_factory.mktemp("privacy")
    docs = root / "docs"
    docs.mkdir()
    (docs / "helpdesk.md").write_text(HELPDESK, encoding="utf-8")
    kb = root / "kb" / "v1"
    built = run_build(docs, kb, root / "cache.sqlite", name="privacy")
    assert built.code == 0, built.stderr
    from qa_api.kb.store import finalize
    finalize(str(kb))
    (root / "words.txt").write_text(WORDS, encoding="utf-8")
    password = root / "redis-password"
    password.write_text(REDIS_PASSWORD or "")
    port = free_port()
    env = dict(os.environ, QA_KB_DIR=str(kb), QA_LLM_BASE_URL=llm_base_url,
               QA_HOST="127.0.0.1", QA_PORT=str(port), QA_COLOR="blue",
               QA_VERSION="privacy-test", QA_RELEASE="privacy-" + uuid.uuid4().hex,
               QA_REDIS_HOST=REDIS_HOST, QA_REDIS_PORT=str(REDIS_PORT),
               QA_REDIS_PASSWORD_FILE=str(password), QA_MAX_TOKENS="48", QA_TOP_K="1",
               QA_SENSITIVE_WORDS_FILE=str(root / "words.txt"), QA_LOG_LEVEL="DEBUG")
    env.pop("QA_PII_REDACT", None)  # the default: on
    log_path = root / "qa-api.log"
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen([sys.executable, "-m", "qa_api.server"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    base = "http://127.0.0.1:%d" % port
    try:
        wait_ready(base, proc, timeout=300)
        yield {"base": base, "proc": proc, "log": log_path}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def chat(server, question, stream=False, params=None):
    body = {"model": "smollm2-135m-instruct", "temperature": 0, "stream": stream,
            "messages": [{"role": "user", "content": question}]}
    return httpx.post(server["base"] + "/v1/chat/completions", params=params, json=body,
                      timeout=120)


def redis_entries():
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, password=REDIS_PASSWORD)
    return {key.decode(): (client.get(key) or b"").decode("utf-8")
            for key in client.scan_iter(count=1000)}


@pytest.fixture()
def live(server):
    if server["proc"].poll() is not None:
        pytest.skip("the server was stopped by the log test")
    return server


def test_question_with_a_sensitive_word_is_refused_before_any_work(live):
    for stream in (False, True):
        response = chat(live, "请问内幕交易怎么处罚？", stream=stream)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "content_filter" and error["type"] == "invalid_request_error"
        assert "内幕交易" not in error["message"]  # the list is not revealed
        assert "x-cache" not in response.headers  # refused before the cache


def test_word_the_model_says_is_cut_from_the_stream_and_the_cache(live):
    question = "Where can I call for IT help? Answer in two full English sentences."
    with httpx.stream("POST", live["base"] + "/v1/chat/completions", timeout=120, json={
            "model": "smollm2-135m-instruct", "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": question}]}) as response:
        assert response.status_code == 200
        events = parse_sse(response.read().decode("utf-8"))
    text = stream_text(events)
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"][0]["finish_reason"] in ("stop", "length")
    assert "***" in text, text  # the model said "the" (any case) at least once
    assert not re.search(r"\bthe\b", text, re.IGNORECASE), text
    assert "The IT" not in events[-2]["sources"][0]["text"]
    # the replay from the cache is the filtered answer
    again = chat(live, question)
    assert again.headers["x-cache"] == "HIT"
    assert again.json()["choices"][0]["message"]["content"] == redact(text)


def test_pii_reaches_neither_the_log_nor_redis(server):
    """Last in this module: it stops the server to read its whole log."""
    before = redis_entries()
    question = ("My phone is %(phone)s or %(phone86)s, ID %(id)s, card %(card)s, mail %(email)s. "
                "What is IT help desk hotline number?" % PII)
    # PII in the query string too: uvicorn's access log writes the full path
    response = chat(server, question, params={"phone": PII["phone"], "mail": PII["email"]})
    assert response.status_code == 200, response.text
    body = response.json()
    # the live answer is not redacted by default: the passage shows the hotline as it is
    assert HOTLINE in body["sources"][0]["text"]
    # ... and it is cached: its value holds placeholders, no PII
    new = {k: v for k, v in redis_entries().items() if k not in before}
    assert len(new) == 1, new
    stored = next(iter(new.values()))
    assert "[PHONE]" in stored and "[EMAIL]" in stored
    for key, value in redis_entries().items():
        for secret in SECRETS:
            assert secret not in key and secret not in value, (secret, key)
    # The process log: the request was logged (access line), with placeholders only.
    server["proc"].send_signal(signal.SIGTERM)
    server["proc"].wait(60)
    log = server["log"].read_text(encoding="utf-8")
    assert "/v1/chat/completions?phone=[PHONE]&mail=" in log, log[-2000:]
    for secret in SECRETS + ["zhang.san%40bank.example.cn"]:
        assert secret not in log, secret
