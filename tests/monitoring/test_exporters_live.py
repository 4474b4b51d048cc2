"""The exporters of the monitoring role against a real gateway (its role) and a real Redis.

Checks what the qa-api test cannot: the gateway role's loopback stub_status is read by the
nginx exporter in the gateway holder's network namespace and never published; the redis
exporter authenticates to the service's Redis; Prometheus scrapes both (jobs gateway and
redis), and sees Redis go down. Everything it creates starts with ``monitor-ex-``.
"""
import json
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from _monitor import HERE, docker, free_port, image, playbook

SERVICE = "monitor-ex-%s" % uuid.uuid4().hex[:6]
NETWORK = SERVICE + "-net"
# Redis and its exporter: internal, no egress, like a deployed service's.
INTERNAL = SERVICE + "-internal"
REDIS = SERVICE + "-redis"
PASSWORD = uuid.uuid4().hex


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    prom_image = image("LLMOPS_PROMETHEUS_IMAGE", "llmops/prometheus")
    gateway_image = image("LLMOPS_GATEWAY_IMAGE", "llmops/gateway")
    redis_image = image("REDIS_IMAGE", "llmops/redis")
    state = tmp_path_factory.mktemp("monitor-ex-state")
    prom_port = free_port()
    try:
        docker("network", "create", NETWORK)
        docker("network", "create", "--internal", INTERNAL)
        docker("run", "-d", "--name", REDIS, "--network", INTERNAL, "--label", "llmops.service=" + SERVICE,
               "--entrypoint", "redis-server", redis_image, "--requirepass", PASSWORD, "--save", "",
               "--appendonly", "no", "--protected-mode", "no")
        extra = {
            "gateway_image": gateway_image, "gateway_service": SERVICE, "gateway_state_dir": str(state),
            "gateway_network": NETWORK, "gateway_internal_network": INTERNAL, "gateway_bind_address": "127.0.0.1",
            "gateway_https_port": free_port(), "gateway_http_port": free_port(),
            "gateway_api_keys": [uuid.uuid4().hex * 2], "gateway_upstream_watch_interval": 0,
            "monitoring_prometheus_image": prom_image, "monitoring_service": SERVICE,
            "monitoring_network": NETWORK, "monitoring_internal_network": INTERNAL, "monitoring_state_dir": str(state),
            "monitoring_port": prom_port,
            "monitoring_redis_password": PASSWORD, "monitoring_scrape_interval": "1s",
            "monitoring_evaluation_interval": "1s", "monitoring_memory": "256m",
        }
        proc, dummy = playbook(HERE / "playbooks" / "gateway_and_monitoring.yml", extra)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        yield {"prom": "http://127.0.0.1:%d" % prom_port}
    finally:
        # Everything of the service (the roles label their containers), containers first.
        names = docker("ps", "-aq", "--filter", "label=llmops.service=" + SERVICE, check=False).stdout.split()
        if names:
            docker("rm", "-f", *names, check=False)
        for volume in docker("volume", "ls", "-q", "--filter", "name=" + SERVICE, check=False).stdout.split():
            if volume.startswith(SERVICE):
                docker("volume", "rm", volume, check=False)
        docker("network", "rm", NETWORK, INTERNAL, check=False)


def query(stack, promql):
    url = stack["prom"] + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def wait_for(stack, promql, expected, timeout=60):
    deadline, value = time.time() + timeout, None
    while time.time() < deadline:
        value = query(stack, promql)
        if value == expected:
            return
        time.sleep(1)
    pytest.fail("%s stayed %s, expected %s" % (promql, value, expected))


def test_gateway_and_redis_are_scraped(stack):
    wait_for(stack, 'up{job="gateway",service="%s"}' % SERVICE, 1)
    wait_for(stack, 'nginx_up{service="%s"}' % SERVICE, 1)
    assert query(stack, 'nginx_connections_accepted{service="%s"}' % SERVICE) >= 1
    wait_for(stack, 'up{job="redis",service="%s"}' % SERVICE, 1)
    wait_for(stack, 'redis_up{service="%s"}' % SERVICE, 1)
    # The form of the check molecule/default/verify.yml makes (there with qa-api: 6).
    sel = 'service="%s"' % SERVICE
    assert query(stack, 'count(max by (job) (up{job=~"qa-api|redis|gateway|prometheus",%s}) == 1)'
                        ' + min(redis_up{%s}) + min(nginx_up{%s})' % (sel, sel, sel)) == 5
    # stub_status stays inside the gateway: the holder publishes only 80 and 443.
    ports = json.loads(docker("inspect", SERVICE + "-gateway-net").stdout)[0]["HostConfig"]["PortBindings"]
    assert sorted(ports) == ["443/tcp", "80/tcp"]
    for name in (SERVICE + "-redis-exporter", SERVICE + "-nginx-exporter"):
        info = docker("inspect", name).stdout
        host = json.loads(info)[0]["HostConfig"]
        assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
        # The redis password is a mounted file, never in the container's definition.
        assert PASSWORD not in info


def test_redis_down_is_seen(stack):
    docker("stop", REDIS)
    wait_for(stack, 'redis_up{service="%s"}' % SERVICE, 0)
