"""Every error leaves qa-api as JSON in the OpenAI shape:
{"error": {"message", "type", "param", "code"}}; client errors are 4xx, never 5xx,
never HTML or FastAPI's {"detail": ...}."""

import logging

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from qa_api.openai_format import error_response

log = logging.getLogger("qa_api.errors")

# status -> (type, code) of the errors Starlette/FastAPI raise themselves
HTTP_ERRORS = {
    400: ("invalid_request_error", "bad_request"),
    404: ("not_found", "unknown_url"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
}


class OpenAIError(Exception):
    """Raised anywhere in a request; the handler turns it into the OpenAI error shape."""

    def __init__(self, status, message, kind="invalid_request_error", code=None, param=None,
                 headers=None):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.code, self.param, self.headers = code, param, headers

    def response(self):
        return error_response(self.status, self.message, self.kind, self.code, self.headers,
                              self.param)


# pydantic adds the tried union member to a location: ("content", "str"), ("list[...]")
UNION_TAGS = {"str", "int", "float", "bool", "dict", "list", "none", "nullable"}


def _param(loc):
    """("body", "messages", 0, "content", "str") -> "messages.0.content": the field, as
    OpenAI names it in error.param."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")
             and not (isinstance(p, str) and (p in UNION_TAGS or "[" in p))]
    return ".".join(parts) or None


def validation_error(exc):
    """A pydantic/FastAPI validation error -> 400 naming the first bad field."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    problems = "; ".join("%s: %s" % (_param(e.get("loc", ())) or "body", e.get("msg"))
                         for e in errors[:5])
    if len(errors) > 5:
        problems += "; and %d more" % (len(errors) - 5)
    code = "missing_required_parameter" if first.get("type") == "missing" else "invalid_value"
    return OpenAIError(400, "invalid request: %s" % problems, code=code,
                       param=_param(first.get("loc", ())))


def install(app):
    @app.exception_handler(OpenAIError)
    async def openai_error(request, exc):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc):
        return validation_error(exc).response()

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        kind, code = HTTP_ERRORS.get(exc.status_code, (
            "invalid_request_error" if exc.status_code < 500 else "server_error", None))
        if exc.status_code == 404:
            message = "no such endpoint: %s %s" % (request.method, request.url.path)
        elif exc.status_code == 405:
            message = "method %s not allowed on %s" % (request.method, request.url.path)
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message, kind, code, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request, exc):
        # A bug, not the client's fault: still JSON, and the traceback goes to the log only.
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return error_response(500, "internal error", "server_error", "internal_error")
