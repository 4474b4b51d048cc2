"""GET /metrics/inference passes the color's inference server's /metrics through (vLLM's).

vLLM needs a GPU: a VLLM METRICS DOUBLE (stdlib HTTP server) serves vLLM-style exposition
text at /metrics beside its /v1 API, or a fault. The qa-api, its routes and middleware are real."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qa_api.inference_metrics import metrics_url
from tests.conftest import settings_for

EXPOSITION = (
    "# HELP vllm:num_requests_running Number of requests currently running on GPU.\n"
    "# TYPE vllm:num_requests_running gauge\n"
    'vllm:num_requests_running{model_name="qwen2.5-7b-instruct"} 3.0\n'
    "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.\n"
    "# TYPE vllm:gpu_cache_usage_perc gauge\n"
    'vllm:gpu_cache_usage_perc{model_name="qwen2.5-7b-instruct"} 0.42\n')


class VllmMetricsDouble:
    """mode: ok (the exposition), 404 (an engine without /metrics), huge (more than the cap)."""

    def __init__(self, mode="ok"):
        self.mode, self.paths = mode, []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                double.paths.append(self.path)
                if double.mode == "404" or self.path != "/metrics":
                    self.send_error(404)
                    return
                body = EXPOSITION.encode() if double.mode == "ok" else b"x" * (9 << 20)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = "http://127.0.0.1:%d/v1" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def scrapes(self):
        return self.paths.count("/metrics")  # the qa-api also polls /v1/models, its readiness

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app_with(corpus_kb):
    from fastapi.testclient import TestClient

    from qa_api.app import create_app

    opened = []

    def start(mode="ok", **settings):
        double = VllmMetricsDouble(mode)
        client = TestClient(create_app(settings_for(corpus_kb["dir"], llm_base_url=double.base_url, **settings)))
        client.__enter__()
        opened.append((client, double))
        return client, double

    yield start
    for client, double in opened:
        client.__exit__(None, None, None)
        double.stop()


def test_the_metrics_url_is_beside_the_api_of_the_inference_server():
    assert metrics_url("http://qa-llm-blue:8000/v1") == "http://qa-llm-blue:8000/metrics"
    assert metrics_url("https://10.0.0.5:8443/v1/") == "https://10.0.0.5:8443/metrics"


def test_vllms_metrics_pass_through_with_a_vllm_metrics_double_counted_apart_from_answers(app_with):
    client, double = app_with(inference_metrics=True)
    for dummy in range(3):
        answer = client.get("/metrics/inference")
        assert answer.status_code == 200 and answer.text == EXPOSITION
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert double.scrapes() == 3
    own = client.get("/metrics").text
    # a scrape is counted under its own endpoint (the SLO reads /v1/ ones), not mixed into qa-api's
    assert 'qa_requests_total{endpoint="/metrics/inference",method="GET",status="200"} 3.0' in own
    assert "vllm:" not in own and "qa_inflight_requests 0.0" in own


def test_off_by_default_a_404_in_the_openai_shape_naming_the_switch(app_with):
    client, double = app_with()
    answer = client.get("/metrics/inference")
    assert answer.status_code == 404 and double.scrapes() == 0
    error = answer.json()["error"]
    assert "QA_INFERENCE_METRICS=on" in error["message"] and "qa_service_inference_metrics" in error["message"]


@pytest.mark.parametrize("mode, says", [
    ("404", "the inference server answered 404 at http://127.0.0.1:"),
    ("huge", "exceed 8388608 bytes"),
])
def test_an_inference_server_without_good_metrics_is_a_502_naming_it(app_with, mode, says):
    client, _double = app_with(mode, inference_metrics=True)
    answer = client.get("/metrics/inference")
    assert answer.status_code == 502 and says in answer.json()["error"]["message"]


def test_an_inference_server_that_is_down_is_a_502_naming_its_url(app_with):
    client, double = app_with(inference_metrics=True)
    url = double.base_url.replace("/v1", "/metrics")
    double.stop()
    answer = client.get("/metrics/inference")
    assert answer.status_code == 502
    assert "cannot read the inference server's metrics at %s: ConnectError" % url in answer.json()["error"]["message"]


def test_the_switch_is_read_from_the_environment():
    from qa_api.config import Settings

    assert Settings.from_env({}).inference_metrics is False
    assert Settings.from_env({"QA_INFERENCE_METRICS": "on"}).inference_metrics is True
    with pytest.raises(ValueError, match="QA_INFERENCE_METRICS must be on or off"):
        Settings.from_env({"QA_INFERENCE_METRICS": "maybe"})
