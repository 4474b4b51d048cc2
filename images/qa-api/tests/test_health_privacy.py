"""/health keeps every field the release modules read, but shows internal paths and URLs
only to callers that did not come through the gateway (QA_HEALTH_DETAILS)."""

import pytest

from tests.conftest import running_app
from tests.test_app_offline import offline_settings, wait_error

FIELDS = {"status", "color", "version", "release", "model", "embedding", "kb", "cache",
          "retrieval", "inference", "inflight", "error", "detail"}
VIA_GATEWAY = {"X-Real-IP": "203.0.113.7", "X-Forwarded-For": "203.0.113.7"}


@pytest.mark.parametrize("mode,direct_shows,forwarded_shows", [
    ("direct", True, False), ("always", True, True), ("never", False, False)])
def test_internal_paths_follow_the_setting(tmp_path, mode, direct_shows, forwarded_shows):
    kb_dir = str(tmp_path / "secret-kb-location")
    with running_app(offline_settings(kb_dir, health_details=mode),
                     wanted=("loading", "error")) as client:
        wait_error(client)
        direct = client.get("/health").json()
        forwarded = client.get("/health", headers=VIA_GATEWAY).json()
    for body, shows in ((direct, direct_shows), (forwarded, forwarded_shows)):
        assert set(body) == FIELDS
        assert body["status"] == "error" and "does not exist" in body["error"]
        assert ("secret-kb-location" in body["error"]) is shows, body["error"]
        assert ("<path>" in body["error"]) is not shows, body["error"]
        assert body["kb"] == direct["kb"] and body["model"] == direct["model"]


def test_loading_detail_hides_the_inference_url_through_the_gateway(corpus_kb):
    with running_app(offline_settings(corpus_kb["dir"]), wanted=("loading",)) as client:
        for dummy in range(100):
            detail = client.get("/health", headers=VIA_GATEWAY).json()["detail"] or ""
            if "waiting for inference" in detail:
                break
        assert "waiting for inference: GET <url>" in detail and "127.0.0.1" not in detail
        assert "http://127.0.0.1:" in client.get("/health").json()["detail"]
