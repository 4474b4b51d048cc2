"""Routing by the request's `model` through the real app and KB, with stand-in inference
servers (tests/fake_llm.py): each model reaches its route's servers (with the route's
upstream model name and key), an unknown model is a 404 in OpenAI's shape, no model is the
default route; failover and circuit breakers work per route; the key shows nowhere.
test_routing_live.py does the same with two real llama.cpp servers."""

import json
import logging

import pytest

from qa_api.config import _read_secret
from qa_api.routing import parse_routes
from tests.conftest import running_app, settings_for
from tests.fake_llm import FakeLLM
from tests.sse import parse_sse, stream_text
from tests.test_backend_failover import metric
from tests.test_client_errors import CHAT

LOCAL = "smollm2-135m-instruct"
ROUTED = "gpt-x"  # what clients send
UPSTREAM = "gpt-x-2024-upstream"  # what the provider is sent
KEY = "sk-provider-ROUTE-5f0c1e2d3a4b"
FAULTS = dict(llm_attempts=3, llm_retry_backoff=0.05, llm_first_token_timeout=1.0,
              llm_timeout=2.0, llm_cooldown=30.0)


def routes(tmp_path, provider_url, spare_url):
    key_file = tmp_path / "provider_key"
    key_file.write_text(KEY + "\n")
    text = json.dumps([{"model": ROUTED, "backends": [
        {"name": "provider", "url": provider_url, "model": UPSTREAM, "api_key_file": str(key_file)},
        {"name": "spare", "url": spare_url}]}])
    return parse_routes(text, _read_secret)


@pytest.fixture(scope="module")
def service(corpus_kb, tmp_path_factory):
    fakes = {"local": FakeLLM(content="local says").start(),
             "provider": FakeLLM(content="provider says").start(),
             "spare": FakeLLM(content="spare says").start()}
    try:
        settings = settings_for(
            corpus_kb["dir"], llm_base_url=fakes["local"].base_url, llm_names=("local",),
            llm_routes=routes(tmp_path_factory.mktemp("keys"), fakes["provider"].base_url,
                              fakes["spare"].base_url), **FAULTS)
        with running_app(settings) as client:
            yield client, fakes
    finally:
        for fake in fakes.values():
            fake.stop()


@pytest.fixture()
def fakes(service):
    client, servers = service
    for fake in servers.values():
        fake.reset()
        fake.mode = "ok"
        fake.release.set()
    for breaker in client.app.state.router.breakers:
        breaker.open_until, breaker.failures = 0.0, 0
    return client, servers


def ask(client, model=None, stream=False, question="How many days of annual leave?"):
    body = {"messages": [{"role": "user", "content": question}], "stream": stream}
    if model is not None:
        body["model"] = model
    return client.post(CHAT, json=body)


def calls(servers):
    return {name: fake.calls for name, fake in servers.items()}


@pytest.mark.parametrize("stream", [False, True])
def test_each_model_reaches_its_own_route(fakes, stream):
    client, servers = fakes
    local = ask(client, LOCAL, stream)
    routed = ask(client, ROUTED, stream)
    assert local.status_code == routed.status_code == 200, (local.text, routed.text)
    assert calls(servers) == {"local": 1, "provider": 1, "spare": 0}
    # each server was sent its own model name; only the provider got the route's key
    assert servers["local"].seen == [(LOCAL, None)]
    assert servers["provider"].seen == [(UPSTREAM, "Bearer " + KEY)]
    if stream:
        events = parse_sse(routed.text)
        assert stream_text(events).startswith("provider says") and events[-1] == "[DONE]"
        assert {e["model"] for e in events[:-1]} == {ROUTED}
    else:
        body = routed.json()
        assert body["model"] == ROUTED
        assert body["choices"][0]["message"]["content"].startswith("provider says")
        assert local.json()["model"] == LOCAL


def test_a_request_without_a_model_goes_to_the_default_route(fakes):
    client, servers = fakes
    for model in (None, ""):
        response = ask(client, model)
        assert response.status_code == 200 and response.json()["model"] == LOCAL
    assert calls(servers) == {"local": 2, "provider": 0, "spare": 0}


@pytest.mark.parametrize("stream", [False, True])
def test_an_unknown_model_is_a_404_in_openai_shape_naming_the_models(fakes, stream):
    client, servers = fakes
    response = ask(client, "gpt-4o", stream)
    assert response.status_code == 404 and response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error", "model_not_found", "model")
    assert "'gpt-4o'" in error["message"]
    assert "'%s', '%s'" % (LOCAL, ROUTED) in error["message"]
    assert calls(servers) == {"local": 0, "provider": 0, "spare": 0}


def test_models_lists_every_routed_model_default_first(fakes):
    client, dummy = fakes
    data = client.get("/v1/models").json()["data"]
    assert [m["id"] for m in data] == [LOCAL, ROUTED]
    assert all(m["object"] == "model" for m in data)


def test_failover_and_circuits_are_per_route(fakes):
    client, servers = fakes
    servers["provider"].mode = "500"
    moved = metric(client, "qa_inference_failover_total", from_backend="provider",
                   to_backend="spare")
    first = ask(client, ROUTED)
    assert first.status_code == 200, first.text
    assert first.json()["choices"][0]["message"]["content"].startswith("spare says")
    assert ask(client, ROUTED, stream=True).status_code == 200  # provider's circuit is open
    assert calls(servers) == {"local": 0, "provider": 1, "spare": 2}
    assert metric(client, "qa_inference_failover_total", from_backend="provider",
                  to_backend="spare") == moved + 1
    # the other route is not touched by it: its backend is asked, its circuit stays closed
    assert ask(client, LOCAL).json()["choices"][0]["message"]["content"].startswith("local says")
    health = client.get("/health").json()
    assert health["status"] == "ready" and health["model"] == LOCAL
    assert [(b["route"], b["name"], b["circuit"]) for b in health["inference"]["backends"]] == [
        (LOCAL, "local", "closed"), (ROUTED, "provider", "open"), (ROUTED, "spare", "closed")]
    # a whole route down: its requests get a 502, the default route still answers
    servers["spare"].mode = "500"
    failed = ask(client, ROUTED)
    assert failed.status_code == 502 and failed.json()["error"]["type"] == "upstream_error"
    assert ask(client, LOCAL).status_code == 200


def test_the_route_key_shows_in_no_health_metrics_or_log(fakes, caplog):
    client, servers = fakes
    caplog.set_level(logging.DEBUG)
    servers["provider"].mode = "400"  # its refusal is logged and answered (502)
    assert ask(client, ROUTED).status_code == 502
    servers["provider"].mode = "ok"
    assert ask(client, ROUTED).status_code == 200
    seen = [client.get("/health").text, client.get("/metrics").text,
            client.get("/v1/models").text, caplog.text, repr(client.app.state.settings)]
    assert caplog.text and not any(KEY in text for text in seen)
    assert all(KEY[-12:] not in text for text in seen)


def test_a_route_whose_servers_are_down_does_not_make_the_color_unready(corpus_kb, tmp_path):
    local = FakeLLM(content="local says").start()
    local.release.set()
    try:
        settings = settings_for(corpus_kb["dir"], llm_base_url=local.base_url, llm_names=("local",),
                                llm_routes=routes(tmp_path, "http://127.0.0.1:9/v1",
                                                  "http://127.0.0.1:9/v2"), **FAULTS)
        with running_app(settings) as client:  # waits for ready
            backends = client.get("/health").json()["inference"]["backends"]
            assert [(b["name"], b["answering"]) for b in backends] == [
                ("local", True), ("provider", False), ("spare", False)]
            assert ask(client, LOCAL).status_code == 200
            assert ask(client, ROUTED).status_code == 502
    finally:
        local.stop()
