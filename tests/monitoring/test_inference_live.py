"""Prometheus (the monitoring role, the collection's image) scrapes vLLM's metrics through a real qa-api.

vLLM needs a GPU: its place is taken by a VLLM METRICS DOUBLE, a container of the qa-api image
running a stdlib HTTP server that answers /metrics with vLLM-style exposition text on port
8000. The qa-api container (collection image, QA_INFERENCE_METRICS=on) points at it, and the
role runs with monitoring_inference_via_qa as deploy.yml sets it for vLLM. Everything is on a
network the test creates, named ``monitor-vllm-*``, and removed at the end.
"""
import json
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from _monitor import HERE, docker, free_port, image, playbook

SERVICE = "monitor-vllm-%s" % uuid.uuid4().hex[:6]
NETWORK = SERVICE + "-net"
DOUBLE = SERVICE + "-llm-blue"
EXPOSITION = ('# TYPE vllm:num_requests_running gauge\\n'
              'vllm:num_requests_running{model_name=\\"qwen\\"} 3.0\\n')
SERVER = """
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"%s" if self.path == "/metrics" else b"no"
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)
HTTPServer(("0.0.0.0", 8000), H).serve_forever()
""" % EXPOSITION


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    prom_image = image("LLMOPS_PROMETHEUS_IMAGE", "llmops/prometheus")
    qa_image = image("LLMOPS_QA_API_IMAGE", "llmops/qa-api")
    state = tmp_path_factory.mktemp("monitor-vllm-state")
    prom_port = free_port()
    created = [("network", NETWORK), ("network", SERVICE + "-internal")]
    try:
        docker("network", "create", NETWORK)
        for name, args in ((DOUBLE, ["--entrypoint", "python", qa_image, "-c", SERVER]),
                           (SERVICE + "-qa-blue", ["-e", "QA_COLOR=blue", "-e", "QA_KB_DIR=/nonexistent",
                                                   "-e", "QA_LLM_BASE_URL=http://%s:8000/v1" % DOUBLE,
                                                   "-e", "QA_INFERENCE_METRICS=on", qa_image])):
            created.insert(0, ("container", name))
            docker("run", "-d", "--name", name, "--network", NETWORK, "--cap-drop", "ALL", *args)
        extra = {
            "monitoring_prometheus_image": prom_image, "monitoring_service": SERVICE,
            "monitoring_network": NETWORK, "monitoring_state_dir": str(state),
            "monitoring_port": prom_port, "monitoring_colors": ["blue", "green"],
            "monitoring_redis_exporter": False, "monitoring_gateway_exporter": False,
            "monitoring_scrape_interval": "1s", "monitoring_evaluation_interval": "1s",
            "monitoring_memory": "256m", "monitoring_inference_via_qa": True,
        }
        created[:0] = [("container", SERVICE + "-prometheus"), ("volume", SERVICE + "-prometheus-data")]
        yield {"extra": extra, "prom": "http://127.0.0.1:%d" % prom_port}
    finally:
        for kind, name in created:  # containers first: a network or volume in use cannot be removed
            if kind == "container":
                docker("rm", "-f", name, check=False)
            else:
                docker(kind, "rm", name, check=False)


def query(stack, promql):
    url = stack["prom"] + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]["result"]


def test_vllms_metrics_reach_prometheus_through_the_qa_api_with_a_vllm_metrics_double(stack):
    proc, dummy = playbook(HERE / "playbooks" / "monitoring.yml", stack["extra"])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    wanted = 'vllm:num_requests_running{job="inference",service="%s",color="blue"}' % SERVICE
    deadline, found = time.time() + 60, []
    while time.time() < deadline and not found:
        found = query(stack, wanted)
        time.sleep(1)
    assert found and float(found[0]["value"][1]) == 3.0, "Prometheus never saw %s" % wanted
    assert found[0]["metric"]["model_name"] == "qwen"
    # the qa-api's own metrics stay in their job; green runs nothing, so its inference target is down
    assert not query(stack, 'vllm:num_requests_running{job="qa-api"}')
    down = query(stack, 'up{job="inference",service="%s",color="green"}' % SERVICE)
    assert [float(r["value"][1]) for r in down] == [0.0]
