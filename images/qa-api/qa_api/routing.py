"""Routing by the request's `model`: which inference backends answer a chat request.

A route is a public model name (what clients send as `model` and GET /v1/models lists) and
its backends, tried in order with retries, failover and a circuit breaker of their own
(qa_api.router holds one llm.BackendPool per route). The built-in route is QA_LLM_MODEL
with QA_LLM_BASE_URL(S) and the fallback; QA_LLM_ROUTES adds more (JSON, parse_routes).

Stdlib only: the collection's llm_routes filter is tested against parse_routes.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Optional, Tuple

BACKEND_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
# A model name as clients send it: printable, no surrounding blanks (it is compared exactly).
MODEL_NAME = re.compile(r"^\S(?:[^\x00-\x1f\x7f]{0,126}\S)?$")
ROUTE_KEYS = {"model", "backends"}
BACKEND_KEYS = {"name", "url", "model", "api_key_file"}


@dataclass(frozen=True)
class Backend:
    """One OpenAI-compatible inference server. ``name`` is what metrics and /health show
    (never the URL, which may carry credentials); ``model`` is the name it is sent; the
    key is kept out of repr."""
    name: str
    base_url: str
    model: str
    api_key: Optional[str] = field(default=None, repr=False)


@dataclass(frozen=True)
class Route:
    """Requests whose `model` is ``model`` go to ``backends``, in order."""
    model: str
    backends: Tuple[Backend, ...]


class UnknownModel(LookupError):
    """A request named a model no route serves (404 model_not_found, OpenAI's shape)."""

    def __init__(self, requested, available):
        self.requested, self.available = requested, tuple(available)
        shown = requested if len(requested) <= 100 else requested[:100] + "..."  # echoed back
        super().__init__("the model %r does not exist here: this service serves %s "
                         "(GET /v1/models lists them)"
                         % (shown, ", ".join(repr(m) for m in self.available)))


def resolve_model(requested, available, default):
    """The route a request goes to: its `model` when a route serves it, the default route
    when it names none (absent or empty); UnknownModel otherwise (names are exact)."""
    if requested is None or requested == "":
        return default
    if requested in available:
        return requested
    raise UnknownModel(requested, available)


def check_routes(routes, default):
    """Problems of a whole routing table (built-in route included), as ValueError: model
    names and backend names (metrics labels, secret file names) unique, the default served."""
    models = [route.model for route in routes]
    for model in models:
        if models.count(model) > 1:
            raise ValueError("two routes serve the model %r: each model needs one route "
                             "(QA_LLM_MODEL is the built-in route's; QA_LLM_ROUTES)" % model)
    names = [b.name for route in routes for b in route.backends]
    for name in names:
        if not BACKEND_NAME.match(name):
            raise ValueError("inference backend name %r: letters, digits, . _ - (at most 32); "
                             "QA_LLM_NAMES / QA_LLM_FALLBACK_NAME / QA_LLM_ROUTES" % name)
    if len(set(names)) != len(names):
        raise ValueError("inference backend names must differ, over all routes: %s"
                         % ", ".join(names))
    if default not in models:
        raise ValueError("QA_LLM_DEFAULT_MODEL %r is no route's model; routes: %s"
                         % (default, ", ".join(models)))


def _where(index, backend=None):
    return "QA_LLM_ROUTES[%d]%s" % (index, "" if backend is None else ".backends[%d]" % backend)


def _string(value, where, key):
    if not isinstance(value, str) or not value.strip():
        raise ValueError("%s.%s must be a non-empty string, got %r" % (where, key, value))
    return value.strip()


def _backend(raw, where, route_model, read_key):
    if not isinstance(raw, dict):
        raise ValueError("%s must be an object {name, url, model, api_key_file}, got %r"
                         % (where, raw))
    if "api_key" in raw:
        raise ValueError("%s has an api_key: keys never go in the environment; put it in a "
                         "file and name the file in api_key_file" % where)
    unknown = sorted(set(raw) - BACKEND_KEYS)
    if unknown:
        raise ValueError("%s: unknown key(s) %s; a backend has %s"
                         % (where, ", ".join(unknown), ", ".join(sorted(BACKEND_KEYS))))
    url = _string(raw.get("url"), where, "url").rstrip("/")
    if not re.match(r"^https?://[^\s/]+", url):
        raise ValueError("%s.url must be an http(s) base URL such as https://api.example.com/v1,"
                         " got %r" % (where, url))
    model = _string(raw["model"], where, "model") if raw.get("model") is not None else route_model
    key_file = raw.get("api_key_file")
    key = None
    if key_file:
        key_file = _string(key_file, where, "api_key_file")
        try:
            key = read_key(key_file)
        except OSError as exc:
            raise ValueError("%s.api_key_file %s cannot be read (%s): mount the key file there"
                             % (where, key_file, exc.strerror or exc)) from None
        if not key:
            raise ValueError("%s.api_key_file %s is empty" % (where, key_file))
    return Backend(_string(raw.get("name"), where, "name"), url, model, key)


def parse_routes(text, read_key):
    """QA_LLM_ROUTES -> (Route, ...). ``text``: a JSON list of {"model": <name clients
    send>, "backends": [{"name", "url", "model" (the name sent to it; default the route's),
    "api_key_file" (optional)}]}; ``read_key(path)`` reads a key file. Empty: no routes."""
    if not (text or "").strip():
        return ()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError("QA_LLM_ROUTES is not valid JSON: %s" % exc) from None
    if not isinstance(data, list):
        raise ValueError("QA_LLM_ROUTES must be a JSON list of routes {model, backends}")
    routes = []
    for index, raw in enumerate(data):
        where = _where(index)
        if not isinstance(raw, dict):
            raise ValueError("%s must be an object {model, backends}, got %r" % (where, raw))
        unknown = sorted(set(raw) - ROUTE_KEYS)
        if unknown:
            raise ValueError("%s: unknown key(s) %s; a route has model and backends"
                             % (where, ", ".join(unknown)))
        model = raw.get("model")
        if not isinstance(model, str) or not MODEL_NAME.match(model):
            raise ValueError("%s.model must be the model name clients send (printable, at most "
                             "128 characters, no surrounding blanks), got %r" % (where, model))
        backends = raw.get("backends")
        if not isinstance(backends, list) or not backends:
            raise ValueError("%s.backends must be a non-empty list (the route %r needs at least "
                             "one inference backend)" % (where, model))
        routes.append(Route(model, tuple(_backend(b, _where(index, i), model, read_key)
                                         for i, b in enumerate(backends))))
    return tuple(routes)
