"""promtool check config and promtool test rules on the monitoring role's rendered files.

promtool runs in the collection's prometheus image (the one the role deploys), so the
rules are tested by the Prometheus version that will evaluate them.
"""
import shutil
import sys

import pytest
import yaml

from _monitor import HERE, ROOT, docker, image, playbook

sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.llmops.bluegreen.plugins.module_utils._names import QA_JOB, names  # noqa: E402

PROMTOOL_TARGET = "/etc/prometheus/llmops"


@pytest.fixture(scope="module")
def prometheus_image():
    return image("LLMOPS_PROMETHEUS_IMAGE", "llmops/prometheus")


def render(directory, extra=None):
    proc, dummy = playbook(HERE / "playbooks" / "render.yml", dict(extra or {}, render_dir=str(directory)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    directory.chmod(0o755)
    for rendered in directory.iterdir():
        rendered.chmod(0o644)


def promtool(img, directory, *args):
    # promtool test rules keeps its TSDB in a temporary directory: /tmp is the only writable place.
    return docker("run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
                  "-v", "%s:%s:ro" % (directory, PROMTOOL_TARGET), "--entrypoint", "/usr/bin/promtool",
                  img, *args, check=False)


def test_rendered_config_passes_promtool_check_config(prometheus_image, tmp_path):
    render(tmp_path)
    proc = promtool(prometheus_image, tmp_path, "check", "config", PROMTOOL_TARGET + "/prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr and "rules found" in proc.stdout + proc.stderr


def test_config_with_every_target_kind_passes(prometheus_image, tmp_path):
    render(tmp_path, {"monitoring_inference_targets": [{"target": "qa-llm-blue:8000", "color": "blue"}],
                      "monitoring_gpu_targets": ["gpu1:9400"], "monitoring_colors": ["green"]})
    text = (tmp_path / "prometheus.yml").read_text()
    assert "job_name: inference" in text and "job_name: gpu" in text and "qa-qa-blue" not in text
    proc = promtool(prometheus_image, tmp_path, "check", "config", PROMTOOL_TARGET + "/prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_fleet_scrapes_each_color_at_its_hosts_private_addresses(prometheus_image, tmp_path):
    # What deploy.yml passes on a fleet: the gateway's upstreams, two qa-api servers for blue.
    targets = {"blue": ["10.0.0.11:8100", "blue-2.lan:8100"], "green": ["10.0.0.12:8100"]}
    render(tmp_path, {"monitoring_qa_targets": targets})
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    job = [j for j in config["scrape_configs"] if j["job_name"] == QA_JOB][0]
    assert {c["labels"]["color"]: c["targets"] for c in job["static_configs"]} == targets
    proc = promtool(prometheus_image, tmp_path, "check", "config", PROMTOOL_TARGET + "/prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # A color left out is scraped at its container, as on one host.
    render(tmp_path, {"monitoring_qa_targets": {"green": ["10.0.0.12:8100"]}})
    job = [j for j in yaml.safe_load((tmp_path / "prometheus.yml").read_text())["scrape_configs"] if j["job_name"] == QA_JOB][0]
    assert {c["labels"]["color"]: c["targets"] for c in job["static_configs"]} == {
        "blue": [names("qa")["upstream"]["blue"]], "green": ["10.0.0.12:8100"]}


def test_vllm_is_scraped_through_each_colors_qa_api_beside_extra_targets(prometheus_image, tmp_path):
    # What deploy.yml passes for vLLM on a fleet: the qa-api targets, and the pass-through switched on.
    targets = {"blue": ["10.0.0.11:8100"], "green": ["10.0.0.12:8100", "green-2.lan:8100"]}
    render(tmp_path, {"monitoring_qa_targets": targets, "monitoring_inference_via_qa": True,
                      "monitoring_inference_targets": [{"target": "other-llm:8000", "color": "blue"}]})
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    job = [j for j in config["scrape_configs"] if j["job_name"] == "inference"][0]
    through = [c for c in job["static_configs"] if c["labels"].get("__metrics_path__") == "/metrics/inference"]
    assert {c["labels"]["color"]: c["targets"] for c in through} == targets
    assert [c["targets"] for c in job["static_configs"] if c not in through] == [["other-llm:8000"]]
    assert job["metrics_path"] == "/metrics"
    proc = promtool(prometheus_image, tmp_path, "check", "config", PROMTOOL_TARGET + "/prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # llama.cpp (the default): no inference job at all
    render(tmp_path, {"monitoring_qa_targets": targets})
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    assert "inference" not in [j["job_name"] for j in config["scrape_configs"]]


def test_alert_rules_fire_and_stay_quiet_as_specified(prometheus_image, tmp_path):
    render(tmp_path)
    shutil.copy(HERE / "alerts_test.yml", tmp_path / "alerts_test.yml")
    (tmp_path / "alerts_test.yml").chmod(0o644)
    proc = promtool(prometheus_image, tmp_path, "test", "rules", PROMTOOL_TARGET + "/alerts_test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_a_broken_rule_is_caught(prometheus_image, tmp_path):
    # The check the role runs before installing: a bad expression never goes live.
    render(tmp_path)
    alerts = tmp_path / "alerts.yml"
    alerts.write_text(alerts.read_text().replace("expr: qa_ready{", "expr: qa_ready{{", 1))
    proc = promtool(prometheus_image, tmp_path, "check", "config", PROMTOOL_TARGET + "/prometheus.yml")
    assert proc.returncode != 0 and "alerts.yml" in proc.stdout + proc.stderr
