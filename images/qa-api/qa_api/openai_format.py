"""OpenAI response shapes: completion, stream chunks, errors."""

import json
import time
import uuid

from fastapi.responses import JSONResponse


def new_id():
    return "chatcmpl-" + uuid.uuid4().hex


def error_body(message, kind, code=None, param=None):
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(status, message, kind, code=None, headers=None, param=None):
    return JSONResponse(status_code=status, headers=headers,
                        content=error_body(message, kind, code, param))


def completion(model, content, finish_reason, sources, usage=None):
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish_reason}],
        "usage": usage,
        "sources": sources,
    }


class ChunkWriter:
    """SSE events of one streamed completion."""

    def __init__(self, model):
        self.id = new_id()
        self.created = int(time.time())
        self.model = model

    def _event(self, delta, finish_reason=None, **extra):
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
        body.update(extra)
        return "data: %s\n\n" % json.dumps(body, ensure_ascii=False)

    def role(self):
        return self._event({"role": "assistant", "content": ""})

    def content(self, text):
        return self._event({"content": text})

    def final(self, finish_reason, sources):
        return self._event({}, finish_reason or "stop", sources=sources)

    @staticmethod
    def error(message):
        return "data: %s\n\n" % json.dumps({"error": {"message": message, "type": "upstream_error"}})

    @staticmethod
    def done():
        return "data: [DONE]\n\n"
