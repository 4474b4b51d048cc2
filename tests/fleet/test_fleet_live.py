"""The fleet under load (Molecule scenario fleet): a gateway host, a host per color, each its own dockerd.

From the controller, streaming and non-streaming requests go to the gateway host's address on
the scenario's network (its own containers, flt-*), while a release (a spec change: the cache
TTL) brings up the idle color on its own host and the gateway switches to it across hosts, then
a rollback switches back: 0 failed, 0 truncated, both colors served. retire.yml then keeps the previous
color cold on its host and a rollback wakes it there; a stop retire stops the idle color's containers on
its host. A canary release goes 50 -> 100 % across hosts, each step judged by the gateway host's Prometheus,
which scrapes each color host's qa-api at its private address. Then the active color host's dockerd (and
its containers) stop: clients are served by the other color (the gateway's failover), an operator request
naming the dead color is not, and the next play fails naming the dead host. kb_refresh.yml builds and
decides on the gateway host and every host follows; each host holds only the images it runs, with the
controller's IDs. Skips unless FLEET_INVENTORY names the scenario inventory.
"""
import json
import os
import pathlib
import re
import ssl
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "bench"))
sys.path.insert(0, str(ROOT / "collections"))
from loadgen import LoadGen, summarize  # noqa: E402
from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import probe  # noqa: E402
from ansible_collections.llmops.bluegreen.plugins.module_utils._names import QA_JOB, names  # noqa: E402

INVENTORY = os.environ.get("FLEET_INVENTORY", "")
SERVICE = os.environ.get("FLEET_SERVICE", "flt")
GATEWAY = os.environ.get("FLEET_GATEWAY", "flt-gw")
ADDRESS = os.environ.get("FLEET_GATEWAY_ADDRESS", "10.213.0.10")
PORT = int(os.environ.get("FLEET_HTTPS_PORT", "8443"))
HOSTS = {"blue": "flt-blue", "green": "flt-green"}
ADDRESSES = {"blue": "10.213.0.11:8100", "green": "10.213.0.12:8100"}
STATE = "/var/lib/llmops/%s/state.json" % SERVICE
AUDIT = "/var/lib/llmops/%s/audit.log" % SERVICE
NAMES = names(SERVICE)

pytestmark = pytest.mark.skipif(not INVENTORY, reason="needs the fleet: molecule test -s fleet (make test-fleet)")


def sh(*argv, timeout=120, check=True):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check)


def playbook(path, extra=None, timeout=1800, args=()):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", INVENTORY, str(ROOT / path),
                           "-e", json.dumps(extra or {})] + list(args), cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def image_id(host, ref):
    return sh("docker", "exec", host, "docker", "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def state():
    return json.loads(sh("docker", "exec", GATEWAY, "cat", STATE).stdout)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    cacert = tmp_path_factory.mktemp("fleet") / "gateway.crt"
    cacert.write_text(sh("docker", "exec", GATEWAY, "cat", "/var/lib/llmops/%s/gateway/tls/gateway.crt" % SERVICE).stdout)
    key = pathlib.Path(os.path.expanduser("~/.config/llmops/%s/api_key" % SERVICE)).read_text().strip()
    return {"url": "https://%s:%d/v1" % (ADDRESS, PORT), "key": key, "cacert": str(cacert)}


# One stream and one plain request at a time (the bluegreen scenario's load on one host): each color is
# one 1-thread llama.cpp that computes a request at a time, its RAG prompt taking seconds to tens of
# seconds while a release shares the 2 cores; 4 workers (and the gate's questions) queued beyond the
# 120 s the qa-api waits for a slot or a first token, and the clients' 300 s (the last run: 231 of 247 failed).
def load(gateway, workers=2):
    return LoadGen(gateway["url"], gateway["key"], gateway["cacert"], workers=workers, stream_share=0.5,
                   max_tokens=8, max_seconds=1500).start()


def served_by(results):
    return sorted({r.color for r in results if r.ok and r.color})


def served_by_within(gen, color, seconds):
    """Whether the load got an answer from color within seconds (polled, bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if color in served_by(list(gen.results)):
            return True
        time.sleep(2)
    return False


def latency(results):
    """Seconds per answered request: median and longest (how near the timeouts the load ran)."""
    took = sorted(r.end - r.start for r in results if r.ok)
    return {"p50_s": round(took[len(took) // 2], 1), "max_s": round(took[-1], 1)} if took else {}


def test_the_upstreams_are_the_color_hosts_private_addresses():
    st = state()
    # blue on flt-blue, green on flt-green, each at port 8100 of its private address.
    assert st["colors"][st["active"]]["upstreams"] == [ADDRESSES[st["active"]]], st
    conf = sh("docker", "exec", GATEWAY, "cat", "/var/lib/llmops/%s/nginx/upstreams.conf" % SERVICE).stdout
    assert "server %s;" % ADDRESSES[st["active"]] in conf
    # The gateway host runs no color: its engine has no qa-api nor inference container.
    names = sh("docker", "exec", GATEWAY, "docker", "ps", "--format", "{{.Names}}").stdout.split()
    assert not [n for n in names if "-qa-" in n or "-llm" in n], names


def collection_images(host):
    """{reference: image ID} of the collection's images (llmops/*, not the base) on a fleet host."""
    rows = sh("docker", "exec", host, "docker", "image", "ls", "--no-trunc", "--format",
              "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.split("\n")
    return dict(row.split() for row in rows if row.startswith("llmops/") and not row.startswith("llmops/base:"))


def test_each_host_holds_only_the_images_it_runs_with_the_controllers_ids():
    # Shipped by archive per host: the gateway host nginx, Redis, Prometheus and the KB builder (qa-api); a color
    # host (independent inference) its qa-api and llama.cpp, no gateway or Redis image.
    expected = {GATEWAY: {"gateway", "prometheus", "qa-api", "redis"}, HOSTS["blue"]: {"llm-llamacpp", "qa-api"},
                HOSTS["green"]: {"llm-llamacpp", "qa-api"}}
    for host, wanted in expected.items():
        held = collection_images(host)
        assert {ref.split(":")[0].split("/", 1)[1] for ref in held} == wanted, (host, sorted(held))
        for ref, image in held.items():
            controller = sh("docker", "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
            assert image == controller, (host, ref, image, controller)


def recap(output):
    """``{host: {ok: n, changed: n, ...}}`` from a play's PLAY RECAP."""
    hosts = {}
    for line in output.split("PLAY RECAP", 1)[-1].splitlines():
        parts = line.split(":", 1)
        if len(parts) == 2 and "ok=" in parts[1]:
            hosts[parts[0].strip()] = dict((k, int(v)) for k, v in (kv.split("=") for kv in parts[1].split()))
    return hosts


def test_kb_refresh_decides_on_the_gateway_host_for_every_host(tmp_path):
    before = state()
    # The documents the fleet converged: built and compared on the gateway host, nothing released.
    same = playbook("playbooks/kb_refresh.yml", {"deploy_platform": False})
    assert same.returncode == 0, same.stdout[-4000:]
    out = " ".join(same.stdout.split())
    assert "unchanged (%s, served by %s); nothing to release" % (
        before["colors"][before["active"]]["kb_version"], before["active"]) in out, out[-3000:]
    counts = recap(same.stdout)
    assert set(counts) == {GATEWAY, HOSTS["blue"], HOSTS["green"]} and sum(c["changed"] for c in counts.values()) == 0, counts
    assert state()["serial"] == before["serial"]
    # One document changed, in check mode: the gateway's decision is a release, and the release is
    # planned across hosts (its bring-up on the idle color's host), not skipped there.
    docs = tmp_path / "docs"
    subprocess.run(["cp", "-r", str(ROOT / "examples" / "docs"), str(docs)], check=True)
    with open(docs / "vpn-howto.txt", "a", encoding="utf-8") as handle:
        handle.write("\nFleet refresh revision %d.\n" % time.time_ns())
    changed = playbook("playbooks/kb_refresh.yml", {"deploy_platform": False, "knowledge_base_src": str(docs)}, args=["--check"])
    assert changed.returncode == 0, changed.stdout[-4000:]
    out = " ".join(changed.stdout.split())
    idle = "green" if before["active"] == "blue" else "blue"
    assert "knowledge base handbook changed: %s -> " % before["colors"][before["active"]]["kb_version"] in out, out[-3000:]
    assert "release " in out and " to %s " % idle in out, out[-3000:]
    assert recap(changed.stdout)[HOSTS[idle]]["ok"] > counts[HOSTS[idle]]["ok"], (recap(changed.stdout), counts)
    assert state()["serial"] == before["serial"]


def test_release_and_rollback_across_hosts_under_load(gateway):
    before = state()["active"]
    gen = load(gateway)
    time.sleep(5)
    started = time.monotonic()
    release = playbook("playbooks/deploy.yml", {"deploy_platform": False, "qa_service_cache_ttl_single_turn": 86401})
    release_s = time.monotonic() - started
    assert release.returncode == 0, release.stdout[-4000:]
    after = state()
    assert after["active"] != before and after["colors"][after["active"]]["upstreams"] == [ADDRESSES[after["active"]]]
    # The new color answers some of the load before the rollback: on a busy host an answer takes
    # minutes, so a fixed pause could end before any request reached it (bounded wait).
    answered = served_by_within(gen, after["active"], 420)
    assert answered, "no request was answered by %s within 420 s of the switch: %s" % (after["active"], gen.results)
    started = time.monotonic()
    rollback = playbook("playbooks/rollback.yml")
    rollback_s = time.monotonic() - started
    assert rollback.returncode == 0, rollback.stdout[-4000:]
    time.sleep(5)
    results = gen.stop()
    summary = summarize(results)
    print("fleet release+rollback: %s, latency %s, served by %s, release %.0f s, rollback %.0f s"
          % (json.dumps(summary), latency(results), served_by(results), release_s, rollback_s))
    assert state()["active"] == before
    assert summary["requests_failed"] == 0 and summary["streams_truncated"] == 0, summary
    assert served_by(results) == ["blue", "green"]


def running(host, container):
    """Whether container runs on host's own engine (False when it does not exist)."""
    out = sh("docker", "exec", host, "docker", "inspect", "-f", "{{.State.Running}}", container, check=False)
    return out.stdout.strip() == "true"


def test_retire_and_the_rollback_that_wakes_a_cold_color_act_on_the_color_hosts(gateway):
    st = state()
    active = st["active"]
    previous = "green" if active == "blue" else "blue"
    assert previous in st["colors"], "the rollback above leaves the previous color deployed: %s" % st
    # cold: only the previous color's inference server stops, on its own host.
    retire = playbook("playbooks/retire.yml", {"retire_force": True, "retire_mode": "cold"})
    assert retire.returncode == 0, retire.stdout[-4000:]
    assert not running(HOSTS[previous], NAMES["llm"][previous])
    assert running(HOSTS[previous], NAMES["qa"][previous]) and running(HOSTS[active], NAMES["llm"][active])
    # The rollback wakes it there, waits until it is ready, then switches to it under load.
    gen = load(gateway)
    rollback = playbook("playbooks/rollback.yml")
    answered = rollback.returncode == 0 and served_by_within(gen, previous, 420)
    results = gen.stop()
    summary = summarize(results)
    said = " ".join(rollback.stdout.split())
    assert rollback.returncode == 0, rollback.stdout[-4000:]
    assert "%s was cold on %s: awake and ready in" % (previous, HOSTS[previous]) in said, said[-3000:]
    assert state()["active"] == previous and running(HOSTS[previous], NAMES["llm"][previous])
    assert answered and summary["requests_failed"] == 0 and summary["streams_truncated"] == 0, summary
    # stop: the color now idle leaves the gateway and its containers stop on its own host.
    idle = active
    retire = playbook("playbooks/retire.yml", {"retire_force": True})
    assert retire.returncode == 0, retire.stdout[-4000:]
    assert not running(HOSTS[idle], NAMES["qa"][idle]) and not running(HOSTS[idle], NAMES["llm"][idle])
    assert list(state()["colors"]) == [previous] and running(HOSTS[previous], NAMES["qa"][previous])


def on_gateway_host(url):
    """GET url from the gateway host (Prometheus listens on its 127.0.0.1), parsed JSON."""
    code = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode())"
    return json.loads(sh("docker", "exec", GATEWAY, "python3", "-c", code, url).stdout)


def qa_targets():
    """{color: (scrape URL, health)} of the qa-api job in the gateway host's Prometheus."""
    active = on_gateway_host("http://127.0.0.1:9090/api/v1/targets?state=active")["data"]["activeTargets"]
    return {t["labels"]["color"]: (t["scrapeUrl"], t["health"]) for t in active if t["labels"].get("job") == QA_JOB}


def test_a_canary_across_hosts_is_judged_by_prometheus_on_the_gateway_host():
    stable = state()["active"]
    target = "green" if stable == "blue" else "blue"
    # Prometheus on the gateway host scrapes each color's qa-api on its host's private address.
    assert qa_targets()[stable] == ("http://%s/metrics" % ADDRESSES[stable], "up"), qa_targets()
    lines = len(sh("docker", "exec", GATEWAY, "cat", AUDIT).stdout.splitlines())
    # A spec change released as a canary: 50 % then 100 %, each step judged from that Prometheus. No
    # client load here (each color computes one answer at a time; the one-host canary test has the load
    # and the shares): the release's own synthetic requests, pinned to the new color, are the traffic.
    proc = playbook("playbooks/deploy.yml", {
        "deploy_platform": False, "qa_service_cache_ttl_single_turn": 86402, "release_strategy": "canary",
        "release_canary_steps": [50, 100], "release_canary_step_seconds": 10, "release_slo_min_requests": 2,
        "release_slo_probe_requests": 3, "release_slo_max_p99_seconds": 300})
    said = " ".join(proc.stdout.split())
    assert proc.returncode == 0, proc.stdout[-4000:]
    # The step's verdict came from Prometheus (with too few requests it would have been sent back).
    assert re.search(r"SLO of %s at 50 %%: SLO met: [0-9.]+ requests" % target, said), said[-3000:]
    new = [json.loads(line) for line in sh("docker", "exec", GATEWAY, "cat", AUDIT).stdout.splitlines()[lines:]]
    steps = [line for line in new if line["action"] == "switch"]
    assert [line["weights"][target] for line in steps] == [50, 100], new
    assert steps[0]["reason"] == "canary step 50 %", steps[0]
    assert state()["active"] == target
    assert qa_targets()[target] == ("http://%s/metrics" % ADDRESSES[target], "up"), qa_targets()


def health(gateway, headers=None):
    """(status, X-QA-Color, body color) of GET /health on the gateway, on a new connection."""
    context = ssl.create_default_context(cafile=gateway["cacert"])
    context.check_hostname = False
    status, color, body_color, error = probe("https://%s:%d/health" % (ADDRESS, PORT), context=context, timeout=30,
                                             headers=headers)
    assert error is None, error
    return status, color, body_color


def test_a_dead_active_color_host_fails_clients_over_to_the_other_color_and_is_named(gateway):
    st = state()
    active = st["active"]
    other = "green" if active == "blue" else "blue"
    assert other in st["colors"], "the canary above leaves the previous color deployed: %s" % st
    dead = HOSTS[active]
    # The active color's host loses its engine: its containers stop, then dockerd.
    sh("docker", "exec", dead, "sh", "-c", "docker ps -q | xargs -r docker stop -t 5 && kill $(cat /var/run/docker.pid)",
       timeout=180)
    gen = load(gateway)
    # Clients are served by the other color (nginx backup servers), and told so in X-QA-Color.
    answered = served_by_within(gen, other, 300)
    time.sleep(10)
    results = gen.stop()
    summary = summarize(results)
    print("fleet, active host %s dead: %s, served by %s" % (dead, json.dumps(summary), served_by(results)))
    assert answered and summary["requests_failed"] == 0 and summary["streams_truncated"] == 0, summary
    assert served_by(results) == [other], [(r.color, r.error) for r in results]
    assert health(gateway)[:2] == (200, other)
    # An operator request naming the dead color is never failed over: it sees the color is down.
    key = sh("docker", "exec", GATEWAY, "cat", NAMES["operator_key"]).stdout.strip()
    status, color, dummy = health(gateway, {"Authorization": "Bearer %s" % key, "X-QA-Color": active})
    assert status in (502, 504) and color == active, (status, color)
    # The gateway still routes to the dead color (state unchanged); the next play names its host.
    assert state()["active"] == active
    nxt = playbook("playbooks/deploy.yml", {"deploy_platform": False}, timeout=900)
    assert nxt.returncode != 0
    assert "the Docker engine of %s does not answer" % dead in nxt.stdout, nxt.stdout[-3000:]


def test_a_host_whose_image_differs_for_the_same_tag_is_refused():
    # On the color host whose engine still runs (the active one's was stopped above) the qa-api tag now
    # names the llama.cpp image (as if the host had built its own copy).
    host = HOSTS["green" if state()["active"] == "blue" else "blue"]
    tags = list(collection_images(host))
    qa_api = [t for t in tags if t.startswith("llmops/qa-api:")][0]
    llm_image = [t for t in tags if t.startswith("llmops/llm-llamacpp:")][0]
    controller_id = sh("docker", "image", "inspect", "--format", "{{.Id}}", qa_api).stdout.strip()
    sh("docker", "exec", host, "docker", "tag", llm_image, qa_api)
    foreign = image_id(host, qa_api)
    assert foreign != controller_id
    proc = playbook("playbooks/deploy.yml", {"deploy_platform": False}, timeout=900, args=["--limit", host])
    assert proc.returncode != 0
    said = " ".join(proc.stdout.split())
    assert "%s: tag %s is image %s here but %s on the controller" % (host, qa_api, foreign, controller_id) in said, \
        proc.stdout[-3000:]
