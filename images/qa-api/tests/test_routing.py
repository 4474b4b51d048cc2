"""The pure decisions of routing by `model` and of the cache's lifetimes: which route a
request goes to, what QA_LLM_ROUTES may say, how many turns a request has and how long
its answer stays cached. No server, no Redis."""

import asyncio
import json

import pytest

from qa_api.cache import ttl_for, user_turns
from qa_api.config import Settings, cache_ttls
from qa_api.llm import InferenceError
from qa_api.router import Router
from qa_api.routing import Backend, Route, UnknownModel, check_routes, parse_routes, resolve_model

KEY = "sk-provider-ROUTING-0123456789"


def keys(files):
    """read_key for parse_routes: a dict of path -> content (a missing path: OSError)."""
    def read(path):
        if path not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[path].strip() or None
    return read


def routes_json(*routes):
    return json.dumps([{"model": model, "backends": backends} for model, backends in routes])


# --- which route ---------------------------------------------------------------------------
@pytest.mark.parametrize("requested,expected", [
    (None, "local"), ("", "local"), ("local", "local"), ("gpt-x", "gpt-x")])
def test_a_request_goes_to_the_route_of_its_model_or_the_default(requested, expected):
    assert resolve_model(requested, ("local", "gpt-x"), "local") == expected


@pytest.mark.parametrize("requested", ["gpt-4", "Local", "local ", " gpt-x"])
def test_an_unknown_model_is_refused_naming_the_models_there_are(requested):
    with pytest.raises(UnknownModel) as caught:
        resolve_model(requested, ("local", "gpt-x"), "local")
    message = str(caught.value)
    assert repr(requested) in message and "'local', 'gpt-x'" in message and "/v1/models" in message
    assert caught.value.available == ("local", "gpt-x")


def test_a_long_unknown_model_is_echoed_cut():
    with pytest.raises(UnknownModel) as caught:
        resolve_model("x" * 100_000, ("local",), "local")
    assert len(str(caught.value)) < 300 and "x" * 100 + "..." in str(caught.value)


# --- QA_LLM_ROUTES -------------------------------------------------------------------------
def test_routes_parse_with_upstream_models_and_keys_from_files():
    text = routes_json(
        ("gpt-x", [{"name": "provider", "url": "https://api.example.com/v1/", "model": "gpt-x-2024",
                    "api_key_file": "/run/secrets/k"},
                   {"name": "local2", "url": "http://llm-b:8000/v1"}]),
        ("mirror", [{"name": "mirror0", "url": "http://mirror:8000/v1"}]))
    routes = parse_routes(text, keys({"/run/secrets/k": KEY + "\n"}))
    assert [r.model for r in routes] == ["gpt-x", "mirror"]
    provider, local2 = routes[0].backends
    assert (provider.name, provider.base_url, provider.model, provider.api_key) == (
        "provider", "https://api.example.com/v1", "gpt-x-2024", KEY)
    assert (local2.model, local2.api_key) == ("gpt-x", None)  # the route's name, no key
    assert KEY not in repr(routes)
    assert parse_routes("", keys({})) == () and parse_routes("  ", keys({})) == ()


@pytest.mark.parametrize("text,message", [
    ("{nope", "not valid JSON"),
    ('{"model": "x"}', "must be a JSON list"),
    (routes_json(("x", [])), r"QA_LLM_ROUTES\[0\].backends must be a non-empty list"),
    ('[{"model": "x", "backend": []}]', "unknown key.*backend"),
    (routes_json((" x", [{"name": "a", "url": "http://a/v1"}])), r"QA_LLM_ROUTES\[0\].model"),
    (routes_json(("x", [{"name": "a", "url": "ftp://a/v1"}])),
     r"QA_LLM_ROUTES\[0\].backends\[0\].url must be an http"),
    (routes_json(("x", [{"name": "a", "url": "http://a/v1", "api_key": KEY}])),
     "keys never go in the environment.*api_key_file"),
    (routes_json(("x", [{"name": "a", "url": "http://a/v1", "api_key_file": "/missing"}])),
     r"api_key_file /missing cannot be read \(No such file"),
    (routes_json(("x", [{"name": "a", "url": "http://a/v1", "api_key_file": "/empty"}])),
     "api_key_file /empty is empty"),
    (routes_json(("x", [{"url": "http://a/v1"}])), r"backends\[0\].name must be a non-empty string"),
])
def test_bad_routes_are_refused_naming_the_place_and_the_fix(text, message):
    with pytest.raises(ValueError, match=message) as caught:
        parse_routes(text, keys({"/empty": "\n"}))
    assert KEY not in str(caught.value)


def test_a_routing_table_needs_unique_models_and_backend_names_and_its_default():
    local = Route("local", (Backend("backend0", "http://a/v1", "local"),))
    provider = Route("gpt-x", (Backend("provider", "https://p/v1", "gpt-x"),))
    check_routes((local, provider), "gpt-x")
    with pytest.raises(ValueError, match="two routes serve the model 'local'"):
        check_routes((local, Route("local", (Backend("b", "http://b/v1", "local"),))), "local")
    with pytest.raises(ValueError, match="names must differ, over all routes"):
        check_routes((local, Route("gpt-x", (Backend("backend0", "https://p/v1", "x"),))), "local")
    with pytest.raises(ValueError, match="backend name 'bad name'"):
        check_routes((Route("m", (Backend("bad name", "http://a/v1", "m"),)),), "m")
    with pytest.raises(ValueError, match="QA_LLM_DEFAULT_MODEL 'gpt-y' is no route's model"):
        check_routes((local, provider), "gpt-y")


def test_settings_put_the_built_in_route_first_and_read_route_keys_from_files(tmp_path):
    key_file = tmp_path / "provider-key"
    key_file.write_text(KEY + "\n")
    routes = routes_json(("gpt-x", [{"name": "provider", "url": "https://p.example/v1",
                                     "api_key_file": str(key_file)}]))
    settings = Settings.from_env({"QA_LLM_MODEL": "smollm2", "QA_LLM_ROUTES": routes})
    assert [(r.model, [b.name for b in r.backends]) for r in settings.routes()] == [
        ("smollm2", ["backend0"]), ("gpt-x", ["provider"])]
    assert settings.default_model == "smollm2"
    assert settings.routes()[1].backends[0].api_key == KEY and KEY not in repr(settings)
    chosen = Settings.from_env({"QA_LLM_MODEL": "smollm2", "QA_LLM_ROUTES": routes,
                                "QA_LLM_DEFAULT_MODEL": "gpt-x"})
    assert chosen.default_model == "gpt-x"
    with pytest.raises(ValueError, match="two routes serve the model 'smollm2'"):
        Settings.from_env({"QA_LLM_MODEL": "smollm2", "QA_LLM_ROUTES": routes_json(
            ("smollm2", [{"name": "other", "url": "http://o/v1"}]))})
    with pytest.raises(ValueError, match="names must differ"):
        Settings.from_env({"QA_LLM_ROUTES": routes_json(
            ("gpt-x", [{"name": "backend0", "url": "http://o/v1"}]))})


# --- turns and cache lifetimes ----------------------------------------------------------------
def chat(*roles):
    return [{"role": role, "content": "%s %d" % (role, i)} for i, role in enumerate(roles)]


@pytest.mark.parametrize("roles,turns", [
    (("user",), 1), (("system", "user"), 1), (("assistant", "user"), 1),
    (("system", "user", "assistant", "user"), 2), (("user", "user"), 2),
    (("user", "assistant", "user", "tool", "assistant", "user"), 3), (("system",), 0)])
def test_turns_are_the_user_messages(roles, turns):
    assert user_turns(chat(*roles)) == turns


def test_a_question_alone_is_cached_longer_than_a_conversation():
    assert ttl_for(chat("system", "user"), 86400, 3600) == 86400
    assert ttl_for(chat("user", "assistant", "user"), 86400, 3600) == 3600
    assert ttl_for(chat("user", "assistant", "user"), 600, 7200) == 7200  # as configured


@pytest.mark.parametrize("env,ttls", [
    ({}, (86400, 3600)),
    ({"QA_CACHE_TTL": "600"}, (600, 600)),  # the one TTL of before still means both
    ({"QA_CACHE_TTL": "600", "QA_CACHE_TTL_SINGLE_TURN": "7200"}, (7200, 600)),
    ({"QA_CACHE_TTL_MULTI_TURN": "120"}, (86400, 120)),
    ({"QA_CACHE_TTL": "", "QA_CACHE_TTL_SINGLE_TURN": "60", "QA_CACHE_TTL_MULTI_TURN": "30"}, (60, 30)),
])
def test_cache_lifetimes_from_the_environment(env, ttls):
    assert cache_ttls(env) == ttls
    settings = Settings.from_env(env)
    assert (settings.cache_ttl_single_turn, settings.cache_ttl_multi_turn) == ttls


@pytest.mark.parametrize("name", ["QA_CACHE_TTL", "QA_CACHE_TTL_SINGLE_TURN", "QA_CACHE_TTL_MULTI_TURN"])
def test_a_bad_cache_lifetime_names_its_variable(name):
    for value in ("0", "1h"):
        with pytest.raises(ValueError, match=name):
            cache_ttls({name: value})


# --- the router over its pools -----------------------------------------------------------------
class FakePool:
    def __init__(self, backends, answer=None):
        self.backends, self.answer, self.closed = backends, answer, False
        self.breakers = list(backends)
        self.base_url = ", ".join(b.name for b in backends)

    def status(self):
        return [{"name": b.name, "model": b.model, "answering": True, "circuit": "closed"}
                for b in self.backends]

    async def models(self):
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    async def close(self):
        self.closed = True


def router(default="local", answers=None):
    answers = answers or {}
    routes = (Route("local", (Backend("backend0", "http://a/v1", "local"),)),
              Route("gpt-x", (Backend("provider", "https://p/v1", "gpt-x-2024"),
                              Backend("spare", "http://s/v1", "gpt-x"))))
    return Router(routes, default, lambda backends: FakePool(
        backends, answers.get(backends[0].name, {"data": [backends[0].name]})))


def test_the_router_picks_each_route_s_own_pool_and_lists_the_default_first():
    table = router()
    assert table.model_names == ("local", "gpt-x")
    assert router(default="gpt-x").model_names == ("gpt-x", "local")
    model, pool = table.route("gpt-x")
    assert model == "gpt-x" and [b.name for b in pool.backends] == ["provider", "spare"]
    assert table.route(None)[1] is table.pools["local"]
    with pytest.raises(UnknownModel):
        table.route("gpt-4")
    assert [(s["name"], s["route"]) for s in table.status()] == [
        ("backend0", "local"), ("provider", "gpt-x"), ("spare", "gpt-x")]
    assert [b.name for b in table.breakers] == ["backend0", "provider", "spare"]
    asyncio.run(table.close())
    assert all(pool.closed for pool in table.pools.values())


def test_only_the_built_in_route_decides_readiness_whichever_is_the_default():
    down = InferenceError("no inference backend answers", unreachable=True, reason="connect")
    for default in ("local", "gpt-x"):
        table = router(default=default, answers={"provider": down})
        assert asyncio.run(table.models()) == {"data": ["backend0"]}
        assert table.base_url == "backend0"
        with pytest.raises(InferenceError):
            asyncio.run(router(default=default, answers={"backend0": down}).models())
    with pytest.raises(RuntimeError):  # a bug in a route is not a backend that is down
        asyncio.run(router(answers={"provider": RuntimeError("bug")}).models())
