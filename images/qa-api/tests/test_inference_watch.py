"""A color whose inference server stops (kept cold) stops being ready, and is ready again when it answers."""

import asyncio

import pytest

from qa_api.config import Settings
from qa_api.llm import InferenceError
from qa_api.loader import watch_inference
from qa_api.state import ServiceState


class Inference:
    """Answers /models from a script: "ok", "refused" (nothing listens) or "slow" (a busy server timing out).

    Records the color's status as each check starts; the watcher ends with the script."""

    base_url = "http://llm:8000/v1"

    def __init__(self, state, script):
        self.state, self.script, self.seen = state, list(script), []

    async def models(self):
        self.seen.append(self.state.status)
        if not self.script:
            raise asyncio.CancelledError
        step = self.script.pop(0)
        if step == "refused":
            raise InferenceError("GET /models failed: ConnectError", unreachable=True)
        if step == "slow":
            raise InferenceError("GET /models failed: ReadTimeout")
        return {"data": []}


def run(script, down_after=3):
    """The statuses seen before each check and after the last one, and the final state."""
    state = ServiceState(Settings())
    state.retriever, state.inference_ok, state.steps = object(), True, {"kb": None, "inference": None}
    inference = Inference(state, script)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(watch_inference(state, inference, every=0, down_after=down_after))
    return inference.seen, state


def test_a_stopped_server_makes_the_color_not_ready_until_it_answers():
    seen, state = run(["refused"] * 3 + ["ok"])
    assert seen == ["ready", "ready", "ready", "loading", "ready"]


def test_a_stopped_server_is_reported_in_health():
    seen, state = run(["refused"] * 5)
    assert seen[-1] == "loading" and "inference server stopped" in state.health(False)["detail"]


def test_a_busy_server_never_makes_the_color_not_ready():
    seen, state = run(["slow"] * 6)
    assert set(seen) == {"ready"}


def test_a_refusal_between_answers_is_not_down():
    seen, state = run(["refused", "refused", "ok", "refused", "refused", "ok"])
    assert set(seen) == {"ready"}
