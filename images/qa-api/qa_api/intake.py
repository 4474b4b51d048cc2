"""Reading a chat request: body size, encoding, JSON, schema and size limits, in that
order, each refused with a 4xx OpenAI error before any expensive work is done."""

import asyncio
import json

from fastapi import Request
from pydantic import ValidationError

from qa_api.errors import OpenAIError, validation_error
from qa_api.schemas import ChatRequest


def too_large(limit):
    return OpenAIError(413, "request body larger than %d bytes" % limit,
                       code="request_too_large")


async def read_body(request, limit):
    """The body, refused with 413 as soon as it is known to exceed limit bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)  # before reading a byte of it
    chunks, size = [], 0
    async for chunk in request.stream():  # chunked uploads have no content-length
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def parse(raw, settings):
    """bytes -> ChatRequest, or OpenAIError (400). Runs in a worker thread: a 1 MiB body
    takes milliseconds to decode and validate, which /health should not wait for."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OpenAIError(400, "the body is not valid UTF-8 (byte %d)" % exc.start,
                          code="invalid_encoding") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise OpenAIError(400, "the JSON body is nested too deeply", code="invalid_json") from None
    except ValueError as exc:  # JSONDecodeError; also integers over Python's digit limit
        raise OpenAIError(400, "the body is not valid JSON: %s" % exc, code="invalid_json") from None
    # Count before validating: 100k tiny messages should not be validated at all.
    messages = data.get("messages") if isinstance(data, dict) else None
    if isinstance(messages, list) and len(messages) > settings.max_messages:
        raise OpenAIError(400, "too many messages: %d, at most %d (QA_MAX_MESSAGES)"
                          % (len(messages), settings.max_messages),
                          code="array_above_max_length", param="messages")
    try:
        request = ChatRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
    check_sizes(request, settings)
    return request


def check_sizes(request, settings):
    total = 0
    for index, message in enumerate(request.messages):
        length = len(message.text())
        if length > settings.max_message_chars:
            raise OpenAIError(400, "message %d has %d characters, at most %d (QA_MAX_MESSAGE_CHARS)"
                              % (index, length, settings.max_message_chars),
                              code="string_above_max_length", param="messages.%d.content" % index)
        total += length
    if total > settings.max_total_chars:
        raise OpenAIError(400, "the messages have %d characters in all, at most %d "
                          "(QA_MAX_TOTAL_CHARS)" % (total, settings.max_total_chars),
                          code="string_above_max_length", param="messages")


async def chat_request(request: Request) -> ChatRequest:
    """FastAPI dependency of /v1/chat/completions."""
    settings = request.app.state.settings
    raw = await read_body(request, settings.max_body_bytes)
    return await asyncio.to_thread(parse, raw, settings)
