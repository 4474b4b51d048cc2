"""Every malformed request is a 4xx JSON error in the OpenAI shape (no model needed):
types, encodings, nesting, sizes, methods and paths. Never 5xx, HTML or {"detail": ...}."""

import asyncio
import json

import pytest

from tests.conftest import running_app
from tests.test_app_offline import offline_settings

CHAT = "/v1/chat/completions"
MiB = 1 << 20


def user(content):
    return {"messages": [{"role": "user", "content": content}]}


def raw(obj):
    return json.dumps(obj).encode()


def nested(depth, inner='"x"'):
    return "[" * depth + inner + "]" * depth


# (id, body bytes, expected status, expected error.code, expected error.param or ...)
BODIES = [
    ("truncated-json", b'{"messages": [', 400, "invalid_json", None),
    ("not-json", b"hello", 400, "invalid_json", None),
    ("empty-body", b"", 400, "invalid_json", None),
    ("nan-constant", b'{"messages":[{"role":"user","content":"hi"}],"temperature":NaN}',
     400, "invalid_json", None),
    ("int-over-digit-limit", b'{"messages":[],"max_tokens":1' + b"0" * 5000 + b"}",
     400, "invalid_json", None),
    ("bad-utf8", b'{"messages":[{"role":"user","content":"\xff\xfe caf\xe9"}]}',
     400, "invalid_encoding", None),
    ("utf16-body", json.dumps(user("hi")).encode("utf-16"), 400, "invalid_encoding", None),
    ("lone-surrogate", b'{"messages":[{"role":"user","content":"a\\ud800b"}]}',
     400, "invalid_value", "messages.0.content"),
    ("lone-surrogate-in-part",
     b'{"messages":[{"role":"user","content":[{"type":"text","text":"\\udfff"}]}]}',
     400, "invalid_value", "messages.0.content"),
    ("top-level-array", b"[]", 400, "invalid_value", None),
    ("top-level-string", b'"hi"', 400, "invalid_value", None),
    ("missing-messages", b"{}", 400, "missing_required_parameter", "messages"),
    ("empty-messages", raw({"messages": []}), 400, "invalid_value", "messages"),
    ("messages-not-list", raw({"messages": "hi"}), 400, "invalid_value", "messages"),
    ("message-not-object", raw({"messages": ["hi"]}), 400, "invalid_value", "messages.0"),
    ("missing-role", raw({"messages": [{"content": "hi"}]}), 400, "missing_required_parameter",
     "messages.0.role"),
    ("role-int", raw({"messages": [{"role": 5, "content": "hi"}]}), 400, "invalid_value",
     "messages.0.role"),
    ("content-int", raw(user(42)), 400, "invalid_value", "messages.0.content"),
    ("content-object", raw(user({"text": "hi"})), 400, "invalid_value", "messages.0.content"),
    ("text-part-int", raw(user([{"type": "text", "text": 123}])), 400, "invalid_value",
     "messages.0.content"),
    ("text-part-list", raw(user([{"type": "text", "text": ["a"]}])), 400, "invalid_value",
     "messages.0.content"),
    ("text-part-without-text", raw(user([{"type": "text"}])), 400, "invalid_value",
     "messages.0.content"),
    ("part-not-object", raw(user(["hi"])), 400, "invalid_value", "messages.0.content"),
    ("part-type-int", raw(user([{"type": 1}])), 400, "invalid_value", "messages.0.content"),
    ("model-int", raw(dict(user("hi"), model=7)), 400, "invalid_value", "model"),
    ("temperature-string", raw(dict(user("hi"), temperature="hot")), 400, "invalid_value",
     "temperature"),
    ("temperature-high", raw(dict(user("hi"), temperature=5)), 400, "invalid_value", "temperature"),
    ("stream-string", raw(dict(user("hi"), stream="maybe")), 400, "invalid_value", "stream"),
    ("max-tokens-zero", raw(dict(user("hi"), max_tokens=0)), 400, "invalid_value", "max_tokens"),
    ("max-tokens-huge", raw(dict(user("hi"), max_tokens=10 ** 15)), 400, "invalid_value",
     "max_tokens"),
    ("max-tokens-float", raw(dict(user("hi"), max_tokens=1.5)), 400, "invalid_value", "max_tokens"),
    ("top-k-zero", raw(dict(user("hi"), top_k=0)), 400, "invalid_value", "top_k"),
    ("deep-nesting-content", ('{"messages":[{"role":"user","content":%s}]}'
                              % nested(100_000)).encode(), 400, "invalid_json", None),
    ("deep-nesting-extra-field",
     ('{"messages":[],"x":%s}' % ('{"a":' * 50_000 + "1" + "}" * 50_000)).encode(),
     400, "invalid_json", None),
    ("nested-list-content", raw(user(json.loads(nested(50)))), 400, "invalid_value",
     "messages.0.content"),
    ("too-many-messages", raw({"messages": [{"role": "user", "content": "q"}] * 65}),
     400, "array_above_max_length", "messages"),
    ("message-too-long", raw({"messages": [{"role": "system", "content": "s"},
                                           {"role": "user", "content": "x" * 32_001}]}),
     400, "string_above_max_length", "messages.1.content"),
    ("messages-too-long-in-all", raw({"messages": [{"role": "user", "content": "x" * 30_000}] * 4}),
     400, "string_above_max_length", "messages"),
    ("body-over-1MiB", raw(user("x" * MiB)), 413, "request_too_large", None),
]


def assert_openai_error(response, status=None):
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    return error


@pytest.fixture(scope="module")
def client(corpus_kb):
    # Not ready (no inference server): every check below must happen before readiness.
    with running_app(offline_settings(corpus_kb["dir"]), wanted=("loading",)) as client:
        yield client


@pytest.mark.parametrize("body,status,code,param", [b[1:] for b in BODIES],
                         ids=[b[0] for b in BODIES])
def test_malformed_body_is_a_4xx_openai_error(client, body, status, code, param):
    response = client.post(CHAT, content=body, headers={"Content-Type": "application/json"})
    error = assert_openai_error(response, status)
    assert error["code"] == code, error
    assert error["param"] == param, error


def test_body_over_the_limit_without_content_length_is_413(client):
    def chunks():  # chunked transfer: the size is only known while reading
        yield b'{"messages":[{"role":"user","content":"'
        for dummy in range(20):
            yield b"x" * 65536
        yield b'"}]}'

    error = assert_openai_error(client.post(CHAT, content=chunks()), 413)
    assert error["code"] == "request_too_large"


def test_declared_oversize_is_refused_before_reading():
    # 10 MiB announced, nothing sent: the answer must not wait for the body.
    from qa_api.errors import OpenAIError
    from qa_api.intake import read_body

    class Unread:
        headers = {"content-length": str(10 * MiB)}

        def stream(self):
            raise AssertionError("the body was read")

    with pytest.raises(OpenAIError) as caught:
        asyncio.run(read_body(Unread(), MiB))
    assert caught.value.status == 413


def test_valid_request_passes_validation(client):
    # Same checks, a good body with a non-JSON content type (curl -d): only "not ready" left.
    response = client.post(CHAT, content=raw(user([{"type": "text", "text": "hi"},
                                                   {"type": "image_url", "image_url": {}}])),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["type"] == "service_unavailable"


@pytest.mark.parametrize("method,path,status", [
    ("GET", CHAT, 405), ("PUT", CHAT, 405), ("DELETE", "/health", 405),
    ("POST", "/health", 405), ("PATCH", "/v1/models", 405), ("FOO", "/health", 405),
    ("X" * 200, "/metrics", 405), ("GET", "/nope", 404), ("POST", "/v1/completions", 404),
    ("GET", "/v1", 404), ("GET", "/%ff%fe/..%2f", 404), ("PROPFIND", "/", 404),
])
def test_wrong_method_or_path_is_a_4xx_openai_error(client, method, path, status):
    response = client.request(method, path, content=b"{}")
    error = assert_openai_error(response, status)
    if status == 405:
        assert "allow" in response.headers


def test_a_bug_is_a_json_500_not_text(corpus_kb, monkeypatch):
    from fastapi.testclient import TestClient

    from qa_api.app import create_app
    from qa_api.state import ServiceState

    monkeypatch.setattr(ServiceState, "health", lambda self, connected: 1 / 0)
    with TestClient(create_app(offline_settings(corpus_kb["dir"])),
                    raise_server_exceptions=False) as client:
        response = client.get("/health")
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert "ZeroDivision" not in response.text
