"""Routing by `model` and the cache's lifetimes against REAL servers (env from run-tests.sh):
two llama.cpp servers, the second standing in for an external provider (another model name,
an API key it refuses requests without), and a real Redis.

Which server answered is seen on the wire: each server is reached through a counting TCP
proxy in this process. The key reaches qa-api the way the role hands it over: a file named
in QA_LLM_ROUTES, read by Settings.from_env."""

import json
import logging
import os
import socket
import threading
import time
import uuid

import httpx
import pytest

from qa_api.config import Settings
from tests.conftest import REDIS_HOST, REDIS_PASSWORD, REDIS_PORT, running_app, wait_status
from tests.tcp_proxy import TcpProxy

LLM2_BASE_URL = os.environ.get("QA_TEST_LLM2_BASE_URL")
LLM2_MODEL = os.environ.get("QA_TEST_LLM2_MODEL", "")
LLM2_API_KEY = os.environ.get("QA_TEST_LLM2_API_KEY", "")
LOCAL = "smollm2-135m-instruct"
ROUTED = "provider-mirror"  # what clients send for the second server
CHAT = "/v1/chat/completions"
pytestmark = pytest.mark.skipif(
    not (LLM2_BASE_URL and LLM2_API_KEY and REDIS_HOST),
    reason="QA_TEST_LLM2_BASE_URL / QA_TEST_LLM2_API_KEY / QA_TEST_REDIS_HOST not set: needs a "
           "second, keyed llama.cpp server and Redis (run-tests.sh starts them)")


class CountingProxy(TcpProxy):
    """A TcpProxy that counts the chat requests passing through it."""

    # TcpProxy's 5 s would cut a generation (or an idle keep-alive connection) that the
    # servers keep open: forward for as long as they do.
    idle_timeout = None

    def __init__(self, base_url):
        url = httpx.URL(base_url)
        super().__init__(socket.gethostbyname(url.host), url.port or 80)
        self.chats = 0
        self._count_lock = threading.Lock()

    @property
    def base_url(self):
        return "http://127.0.0.1:%d/v1" % self.port

    def _forwarded(self, data):
        with self._count_lock:
            self.chats += data.count(b"POST /v1/chat/completions ")


def wait_models(base_url, headers=None):
    """The server answers /models (it may still be loading): its status code at the end."""
    deadline = time.monotonic() + float(os.environ.get("QA_TEST_LLM_WAIT", "300"))
    while True:
        try:
            status = httpx.get(base_url + "/models", headers=headers, timeout=5).status_code
            if status != 503 or time.monotonic() > deadline:
                return status
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        time.sleep(1)


@pytest.fixture(scope="module")
def routed(corpus_kb, llm_base_url, tmp_path_factory):
    # The stand-in provider refuses requests without its key.
    assert wait_models(LLM2_BASE_URL, {"Authorization": "Bearer " + LLM2_API_KEY}) == 200
    assert wait_models(LLM2_BASE_URL) == 401
    secrets = tmp_path_factory.mktemp("secrets")
    (secrets / "route_key").write_text(LLM2_API_KEY + "\n")
    (secrets / "redis").write_text((REDIS_PASSWORD or "") + "\n")
    local, provider = CountingProxy(llm_base_url).start(), CountingProxy(LLM2_BASE_URL).start()
    env = {
        "QA_COLOR": "green", "QA_KB_DIR": corpus_kb["dir"], "QA_LLM_BASE_URL": local.base_url,
        "QA_LLM_MODEL": LOCAL, "QA_MAX_TOKENS": "16", "QA_TOP_K": "2",
        "QA_RELEASE": "routing-live-%s" % uuid.uuid4().hex[:8],
        "QA_REDIS_HOST": REDIS_HOST, "QA_REDIS_PORT": str(REDIS_PORT),
        "QA_REDIS_PASSWORD_FILE": str(secrets / "redis") if REDIS_PASSWORD else "",
        "QA_LLM_ROUTES": json.dumps([{"model": ROUTED, "backends": [
            {"name": "provider", "url": provider.base_url, "model": LLM2_MODEL,
             "api_key_file": str(secrets / "route_key")}]}]),
        # the role's defaults, as the role renders them
        "QA_CACHE_TTL_SINGLE_TURN": "86400", "QA_CACHE_TTL_MULTI_TURN": "3600"}
    assert LLM2_API_KEY not in json.dumps(env)  # the environment names the file only
    settings = Settings.from_env(env)
    try:
        with running_app(settings) as client:
            yield client, local, provider
    finally:
        local.stop()
        provider.stop()


def ask(client, model, content, stream=False, history=()):
    body = {"temperature": 0, "max_tokens": 16, "stream": stream,
            "messages": list(history) + [{"role": "user", "content": content}]}
    if model is not None:
        body["model"] = model
    return client.post(CHAT, json=body)


def question():
    return "How many days of annual leave? (run %s)" % uuid.uuid4().hex[:8]


def test_each_model_is_answered_by_its_own_server(routed):
    client, local, provider = routed
    before = (local.chats, provider.chats)
    answer = ask(client, LOCAL, question())
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == LOCAL and answer.headers["x-cache"] == "MISS"
    assert (local.chats, provider.chats) == (before[0] + 1, before[1])

    answer = ask(client, ROUTED, question())
    assert answer.status_code == 200, answer.text  # the keyed server took the route's key
    assert answer.json()["model"] == ROUTED
    assert answer.json()["choices"][0]["message"]["content"].strip()
    assert (local.chats, provider.chats) == (before[0] + 1, before[1] + 1)

    with client.stream("POST", CHAT, json={"model": ROUTED, "stream": True, "max_tokens": 16,
                                           "messages": [{"role": "user", "content": question()}]}) as response:
        text = response.read().decode("utf-8")
    assert response.status_code == 200 and text.rstrip().endswith("data: [DONE]")
    assert '"model": "%s"' % ROUTED in text and '"error"' not in text
    assert (local.chats, provider.chats) == (before[0] + 1, before[1] + 2)

    answer = ask(client, None, question())  # no model: the default route
    assert answer.status_code == 200 and answer.json()["model"] == LOCAL
    assert (local.chats, provider.chats) == (before[0] + 2, before[1] + 2)


def test_an_unknown_model_is_a_404_and_reaches_no_server(routed):
    client, local, provider = routed
    before = (local.chats, provider.chats)
    response = ask(client, "gpt-4o", question())
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["type"], error["param"]) == (
        "model_not_found", "invalid_request_error", "model")
    assert LOCAL in error["message"] and ROUTED in error["message"]
    assert (local.chats, provider.chats) == before
    models = client.get("/v1/models").json()["data"]
    assert [m["id"] for m in models] == [LOCAL, ROUTED]


def redis_client():
    import redis  # pylint: disable=import-outside-toplevel
    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, password=REDIS_PASSWORD or None)


def new_entry(store, before):
    """The one answer key added since ``before`` (a set of keys)."""
    added = set(store.scan_iter("qa:answer:v2:*")) - before
    assert len(added) == 1, added
    return added.pop()


@pytest.mark.parametrize("model", [LOCAL, ROUTED])
def test_a_question_alone_is_cached_24h_and_a_conversation_1h(routed, model):
    client, dummy, dummy = routed
    store = redis_client()
    wait_status(client, ("ready",))
    assert client.get("/health").json()["cache"]["connected"]

    before = set(store.scan_iter("qa:answer:v2:*"))
    single = question()
    assert ask(client, model, single, history=[{"role": "system", "content": "Be brief."}]
               ).headers["x-cache"] == "MISS"
    ttl = store.ttl(new_entry(store, before))
    assert 86400 - 120 < ttl <= 86400, ttl

    before = set(store.scan_iter("qa:answer:v2:*"))
    history = [{"role": "user", "content": single},
               {"role": "assistant", "content": "Employees get 25 days."}]
    response = ask(client, model, "And how many can be carried over?", stream=True, history=history)
    assert response.status_code == 200 and response.headers["x-cache"] == "MISS"
    ttl = store.ttl(new_entry(store, before))
    assert 3600 - 120 < ttl <= 3600, ttl

    # the same conversation again is served from that entry
    again = ask(client, model, "And how many can be carried over?", history=history)
    assert again.headers["x-cache"] == "HIT"


def test_the_route_key_is_in_no_health_metrics_or_log(routed, caplog):
    client, dummy, dummy = routed
    caplog.set_level(logging.DEBUG)
    assert ask(client, ROUTED, question()).status_code == 200
    for text in (client.get("/health").text, client.get("/metrics").text, caplog.text,
                 repr(client.app.state.settings)):
        assert LLM2_API_KEY not in text
