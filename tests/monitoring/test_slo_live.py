"""Prometheus (the monitoring role, the collection's image) scraping a real qa-api; slo_check reads it.

On a network the test creates: a qa-api container of the collection's image named as the
role expects (``<service>-qa-blue``), with no knowledge base, so that ``/v1/models`` answers
200 and ``/v1/chat/completions`` answers 503 (service not ready): real 5xx from the real app,
the fault this test injects. The role is run twice (the second run, and one in check
mode, change nothing), its containers are checked for the hardening, then bounded traffic
is sent to qa-api on a loopback port and slo_check is asked: no traffic -> not_enough_traffic, 200s -> pass,
a share of 503s -> a breach naming error_rate, its value and the threshold.
Everything it creates starts with ``monitor-it-`` and is removed at the end.
"""
import json
import pathlib
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from _monitor import HERE, docker, free_port, image, playbook

SERVICE = "monitor-it-%s" % uuid.uuid4().hex[:6]
NETWORK = SERVICE + "-net"
QA = SERVICE + "-qa-blue"
SCRAPE = 1  # seconds; the windows below hold many scrapes
# increase() extrapolates a series to the window's end by up to 1.1 scrape intervals: over a
# series sampled for 3 s, 60 requests read as 81 (seen; CI saw 76). Each burst is followed by SPAN seconds
# of samples, so a count reads at most (8 + 1.1) / 8 of the truth; twice the truth (each request
# counted twice) is still told.
SPAN = 8 * SCRAPE
EXTRAPOLATED = 1.35  # (8 + 1.1) / 8, and room for scrapes late on a busy machine


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    prom_image = image("LLMOPS_PROMETHEUS_IMAGE", "llmops/prometheus")
    qa_image = image("LLMOPS_QA_API_IMAGE", "llmops/qa-api")
    state = tmp_path_factory.mktemp("monitor-state")
    prom_port, qa_port = free_port(), free_port()
    created = []
    try:
        docker("network", "create", NETWORK)
        created.append(("network", NETWORK))
        # The role creates the internal network of the service (its redis exporter's).
        created.append(("network", SERVICE + "-internal"))
        docker("run", "-d", "--name", QA, "--network", NETWORK, "-p", "127.0.0.1:%d:8000" % qa_port,
               "-e", "QA_COLOR=blue", "-e", "QA_KB_DIR=/nonexistent", "-e", "QA_LLM_BASE_URL=http://nowhere:8000/v1",
               qa_image)
        created.append(("container", QA))
        extra = {
            "monitoring_prometheus_image": prom_image, "monitoring_service": SERVICE,
            "monitoring_network": NETWORK, "monitoring_state_dir": str(state),
            "monitoring_port": prom_port, "monitoring_colors": ["blue", "green"],
            "monitoring_redis_exporter": False, "monitoring_gateway_exporter": False,
            "monitoring_scrape_interval": "%ds" % SCRAPE, "monitoring_evaluation_interval": "%ds" % SCRAPE,
            "monitoring_memory": "256m",
        }
        created.append(("container", SERVICE + "-prometheus"))
        created.append(("volume", SERVICE + "-prometheus-data"))
        yield {"extra": extra, "prom": "http://127.0.0.1:%d" % prom_port, "qa": "http://127.0.0.1:%d" % qa_port}
    finally:
        # Containers first: a volume or network in use cannot be removed.
        order = {"container": 0, "volume": 1, "network": 2}
        for kind, name in sorted(created, key=lambda item: order[item[0]]):
            if kind == "container":
                docker("rm", "-f", name, check=False)
            else:
                docker(kind, "rm", name, check=False)


def changed(data):
    return sum(s.get("changed", 0) for s in data["stats"].values())


def task_results(data, name):
    # A role's task is named "<role> : <name>" by the json callback.
    return [h for play in data["plays"] for t in play["tasks"] if t["task"]["name"].rpartition(" : ")[2] == name
            for h in t["hosts"].values()]


def slo(stack, *checks):
    """Run slo_check through ansible, once per dict of parameters; the module results."""
    params = [dict({"url": stack["prom"], "service": SERVICE, "window": "1m"}, **c) for c in checks]
    proc, data = playbook(HERE / "playbooks" / "slo.yml", {"slo_checks": params}, json_output=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return task_results(data, "Judge each requested color")[0]["results"]


def request(url, data=None, expect=(200,)):
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status in expect, (url, status)
    return status


def scraped(stack, promql, minimum, timeout=30):
    """Wait until Prometheus answers ``promql`` with at least ``minimum``."""
    deadline = time.time() + timeout
    value = None
    while time.time() < deadline:
        url = stack["prom"] + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            result = json.load(response)["data"]["result"]
        value = float(result[0]["value"][1]) if result else None
        if value is not None and value >= minimum:
            return value
        time.sleep(SCRAPE)
    pytest.fail("Prometheus never saw %s >= %s (last %s)" % (promql, minimum, value))


CHAT = json.dumps({"messages": [{"role": "user", "content": "How do I reset my VPN token?"}]}).encode()


def test_role_converges_and_is_idempotent_and_hardened(stack):
    proc, data = playbook(HERE / "playbooks" / "monitoring.yml", stack["extra"], json_output=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert changed(data) > 0
    proc, data = playbook(HERE / "playbooks" / "monitoring.yml", stack["extra"], json_output=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert changed(data) == 0, [t["task"]["name"] for p in data["plays"] for t in p["tasks"]
                                if any(h.get("changed") for h in t["hosts"].values())]
    # Check mode on the converged host: nothing would change, and nothing fails.
    proc, data = playbook(HERE / "playbooks" / "monitoring.yml", stack["extra"], json_output=True, check=True)
    assert proc.returncode == 0 and changed(data) == 0, proc.stdout[-4000:]
    info = json.loads(docker("inspect", SERVICE + "-prometheus").stdout)[0]
    host = info["HostConfig"]
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"] and host["Memory"] == 256 * 1024 * 1024
    assert info["Config"]["User"] == "prometheus"
    assert host["PortBindings"]["9090/tcp"][0]["HostIp"] == "127.0.0.1"
    assert "--storage.tsdb.retention.time=15d" in info["Args"] and "--storage.tsdb.retention.size=2GB" in info["Args"]
    # Both colors are targets; only blue runs.
    assert scraped(stack, 'up{job="qa-api",service="%s",color="blue"}' % SERVICE, 1) == 1


def test_config_change_is_checked_then_reloaded_and_a_bad_one_never_installed(stack):
    conf = pathlib.Path(stack["extra"]["monitoring_state_dir"]) / SERVICE / "monitoring" / "conf" / "alerts.yml"
    before = conf.read_text()
    proc, dummy = playbook(HERE / "playbooks" / "monitoring.yml", dict(stack["extra"], monitoring_alert_for="5 minutes"))
    assert proc.returncode != 0 and "fails promtool check config" in proc.stdout, proc.stdout[-3000:]
    assert conf.read_text() == before
    proc, data = playbook(HERE / "playbooks" / "monitoring.yml", dict(stack["extra"], monitoring_alert_p99_seconds=12),
                          json_output=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert [h["changed"] for h in task_results(data, "Reload prometheus")] == [True]
    deadline = time.time() + 30
    while time.time() < deadline:
        with urllib.request.urlopen(stack["prom"] + "/api/v1/rules", timeout=5) as response:
            rules = [r for g in json.load(response)["data"]["groups"] for r in g["rules"]]
        if any(r["name"] == "QAHighLatencyP99" and "> 12" in r["query"] for r in rules):
            break
        time.sleep(1)
    else:
        pytest.fail("Prometheus did not load the new p99 threshold: %s" % rules)


def test_slo_check_sees_requests_then_an_error_breach(stack):
    blue = 'job="qa-api",service="%s",color="blue"' % SERVICE
    # Nothing sent yet: no verdict, and a color that is not running has no traffic either.
    thin, green = slo(stack, {"color": "blue", "min_requests": 20}, {"color": "green"})
    assert thin["status"] == "not_enough_traffic" and thin["ok"] is False, thin
    assert "not enough traffic" in thin["msg"]
    assert green["status"] == "not_enough_traffic" and green["requests"] == 0

    # A first request of each kind makes its series exist before the measured traffic
    # (Prometheus counts increases from the first sample it sees).
    request(stack["qa"] + "/v1/models")
    scraped(stack, 'qa_requests_total{%s,endpoint="/v1/models"}' % blue, 1)
    for dummy in range(60):
        request(stack["qa"] + "/v1/models")
    scraped(stack, 'qa_requests_total{%s,endpoint="/v1/models"}' % blue, 61)
    time.sleep(SPAN)
    good, = slo(stack, {"color": "blue", "min_requests": 40, "max_p99_seconds": 5})
    assert good["status"] == "pass" and good["ok"] is True, good
    assert 55 <= good["requests"] <= EXTRAPOLATED * 60 and good["errors"] == 0 and good["breaches"] == []
    assert good["p99_seconds"] is not None and good["p99_seconds"] < 5

    request(stack["qa"] + "/v1/chat/completions", CHAT, expect=(503,))
    scraped(stack, 'qa_requests_total{%s,endpoint="/v1/chat/completions",status="503"}' % blue, 1)
    for dummy in range(30):
        request(stack["qa"] + "/v1/chat/completions", CHAT, expect=(503,))
    scraped(stack, 'qa_requests_total{%s,endpoint="/v1/chat/completions",status="503"}' % blue, 31)
    time.sleep(SPAN)
    bad, = slo(stack, {"color": "blue", "min_requests": 40, "max_error_rate": 0.01})
    assert bad["status"] == "breach" and bad["ok"] is False, bad
    assert [b["metric"] for b in bad["breaches"]] == ["error_rate"]
    breach = bad["breaches"][0]
    # ~0.33 while the 60 good requests are still in the window, up to 1 once they left it.
    assert breach["threshold"] == 0.01 and 0.2 <= breach["value"] <= 1.0, bad
    assert 28 <= bad["errors"] <= EXTRAPOLATED * 31
    assert bad["msg"].startswith("SLO breached: error_rate 0.")
    print("slo_check pass: %s | breach: %s" % (good["msg"], bad["msg"]))
