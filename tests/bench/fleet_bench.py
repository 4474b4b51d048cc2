"""make bench-fleet: switch time and time to 100 % on the new color, with 1 and 2 qa-api servers per color.

Creates its own Docker-in-Docker fleet (fbn-gw, fbn-blue1/2, fbn-green1/2 on fbn-fleet,
10.214.0.0/24; molecule/fleet/create.yml with the bench's extra vars), converges it with
playbooks/deploy.yml on tests/bench/fleet-inventory/hosts-1.yml (all five hosts get the engine and
the images; one server per color), then runs releases (a spec change: the cache TTL) under a light
load through the gateway host: --per-config with hosts-1.yml, then as many with hosts-2.yml (two
servers per color). Each release: switch time (the play's switch task: its timestamps and the
module's phases), time to 100 % on the new color (from /health probes every 0.5 s and from the
load's own answers, by send time), when the old color's last answer came back, the release's
wall time, the 1-minute load average. Prints one JSON object and writes it (--out). Tears the
fleet down at the end, pass or fail (--keep leaves it). Every wait and loop is bounded.
"""
import argparse
import json
import os
import pathlib
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fleet_parts import (BenchError, audit_switch, drain_seconds, other, plan, release_vars,  # noqa: E402
                         summarize_config, switch_task, time_to_all, upstream_counts)
from loadgen import LoadGen, summarize  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
INVENTORY_DIR = ROOT / "tests" / "bench" / "fleet-inventory"
INVENTORIES = {1: str(INVENTORY_DIR / "hosts-1.yml"), 2: str(INVENTORY_DIR / "hosts-2.yml")}
SERVICE = "fbn"
GATEWAY_HOST = "fbn-gw"
ADDRESS = "10.214.0.10"
PORT = 8443
STATE_DIR = "/var/lib/llmops/%s" % SERVICE
# The scenario's create/destroy with the bench's own network, subnet and label (never flt-*'s);
# --cpu-shares 512: the five hosts yield to the other runs on the shared 2 cores.
FLEET_VARS = {"fleet_network": "fbn-fleet", "fleet_subnet": "10.214.0.0/24",
              "fleet_label": {"io.llmops.fleet-bench": "1"}, "fleet_run_options": ["--cpu-shares", "512"]}
LOGS = ROOT / "build" / "bench-fleet"


def log(msg):
    print("%s bench-fleet: %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def playbook(path, inventory, extra, timeout, name):
    """ansible-playbook with the json callback; its whole output goes to build/bench-fleet/<name>.json."""
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    cmd = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", inventory, str(ROOT / path), "-e", json.dumps(extra)]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout, stderr, rc = exc.stdout or "", "timed out after %d s" % timeout, -1
        stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
    wall = time.monotonic() - started
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / ("%s.json" % name)).write_text(stdout + "\n" + stderr)
    try:
        out = json.loads(stdout[stdout.index("{"):])
    except ValueError:
        out = {}
    return rc, round(wall, 1), out, stderr


def failure_text(out, stderr):
    for play in out.get("plays", []):
        for task in play.get("tasks", []):
            for host, res in task["hosts"].items():
                if res.get("failed") and not res.get("ignore_errors"):
                    return "%s (%s): %s" % (task["task"]["name"], host, str(res.get("msg", ""))[:1500])
    return stderr[-1500:] or "no output"


def on_gateway(*argv, timeout=60):
    return subprocess.run(("docker", "exec", GATEWAY_HOST) + argv, capture_output=True, text=True,
                          timeout=timeout, check=True).stdout


def state():
    return json.loads(on_gateway("cat", "%s/state.json" % STATE_DIR))


class Probe(object):
    """GET /health through the gateway every ``interval`` s (X-QA-Color of each answer) and the 1-minute
    load average every 10 s; stops at stop() or after ``max_seconds``."""

    def __init__(self, url, cacert, interval=0.5, max_seconds=2400):
        self.url, self.interval, self.max_seconds = url, interval, max_seconds
        self.context = ssl.create_default_context(cafile=cacert)
        self.samples, self.failures, self.loadavg = [], 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=30)
        return self

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        next_load = 0.0
        while not self._stop.is_set() and time.monotonic() < deadline:
            if time.monotonic() >= next_load:
                self.loadavg.append(round(os.getloadavg()[0], 2))
                next_load = time.monotonic() + 10
            sent = time.time()
            try:
                with urllib.request.urlopen(self.url, timeout=5, context=self.context) as resp:
                    color = resp.headers.get("X-QA-Color", "")
                    if resp.status == 200 and color:
                        self.samples.append((sent, color))
            except Exception:  # a missed probe is counted, never fatal: the figure uses answers only
                self.failures += 1
            self._stop.wait(self.interval)


def latency(results):
    took = sorted(r.end - r.start for r in results if r.ok)
    return {"p50_s": round(took[len(took) // 2], 1), "max_s": round(took[-1], 1)} if took else {}


def one_release(index, servers, inventory, gateway, args):
    """A release under load: its figures (a dict; ``ok`` False with ``error`` when it failed)."""
    before = state()["active"]
    record = {"index": index, "servers_per_color": servers, "from": before, "to": other(before), "ok": False}
    probe = Probe("https://%s:%d/health" % (ADDRESS, PORT), gateway["cacert"]).start()
    gen = LoadGen(gateway["url"], gateway["key"], gateway["cacert"], workers=args.workers, stream_share=0.5,
                  max_tokens=8, max_seconds=2400).start()
    since = time.time()
    time.sleep(args.settle)
    log("release %d (%d server(s) per color): %s -> %s" % (index, servers, before, record["to"]))
    rc, wall, out, stderr = playbook("playbooks/deploy.yml", inventory, release_vars(index), 1800,
                                     "release-%d" % index)
    released = time.time()
    # After the play: more answers, so the final run of the new color is seen in the load too (bounded).
    deadline = time.monotonic() + args.after
    while time.monotonic() < deadline:
        done = [r for r in gen.results if r.start > released and r.ok]
        if len(done) >= args.workers:
            break
        time.sleep(2)
    probe.stop()
    results = gen.stop()
    record.update(release_s=wall, load=summarize(results), latency=latency(results), loadavg_1m=probe.loadavg,
                  probe_failures=probe.failures)
    try:
        if rc != 0:
            raise BenchError("release %d failed: %s" % (index, failure_text(out, stderr)))
        switch = switch_task(out)
        after = state()["active"]
        if after != record["to"] or switch["to"] != record["to"]:
            raise BenchError("release %d: expected %s active after it, the state says %s" % (index, record["to"], after))
        audit = audit_switch(on_gateway("cat", "%s/audit.log" % STATE_DIR).splitlines(), since)
        start = switch["start"]
        record.update(ok=True, switch={"seconds": switch["seconds"], "task_s": round(switch["end"] - start, 3),
                                       "all_target_seconds": switch["all_target_seconds"]},
                      audit={"duration_s": audit["duration_s"], "start_minus_task_start_s": round(audit["start"] - start, 1)}
                      if audit else None,
                      probe=dict(time_to_all(probe.samples, start, record["to"]), interval_s=probe.interval),
                      load_colors=time_to_all([(r.start, r.color) for r in results if r.ok and r.color],
                                              start, record["to"]),
                      drain_s=drain_seconds(results, start, record["to"]))
        logs = subprocess.run(["docker", "exec", GATEWAY_HOST, "docker", "logs", "%s-gateway" % SERVICE],
                              capture_output=True, text=True, timeout=60, check=False)
        record["upstreams_served"] = upstream_counts((logs.stdout + logs.stderr).splitlines(), since, time.time())
    except (BenchError, subprocess.SubprocessError, KeyError, ValueError) as exc:
        record["error"] = str(exc)
    log("release %d: %s" % (index, json.dumps({k: record.get(k) for k in (
        "ok", "error", "release_s", "switch", "probe", "load_colors", "drain_s", "load", "loadavg_1m")})))
    return record


def gateway_access():
    tmp = LOGS / "gateway.crt"
    LOGS.mkdir(parents=True, exist_ok=True)
    tmp.write_text(on_gateway("cat", "%s/gateway/tls/gateway.crt" % STATE_DIR))
    key = pathlib.Path(os.path.expanduser("~/.config/llmops/%s/api_key" % SERVICE)).read_text().strip()
    return {"url": "https://%s:%d/v1" % (ADDRESS, PORT), "key": key, "cacert": str(tmp)}


def others_running():
    """Containers of other runs on this engine (the contention the figures share the cores with)."""
    names = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True,
                           timeout=30, check=False).stdout.split()
    return sorted(n for n in names if not n.startswith("fbn-"))


def teardown():
    log("teardown: destroy.yml with the bench's label (fbn-* only)")
    rc, wall, out, stderr = playbook("molecule/fleet/destroy.yml", INVENTORIES[2], FLEET_VARS, 900, "destroy")
    return {"rc": rc, "seconds": wall, "error": None if rc == 0 else failure_text(out, stderr)}


def run(args, report):
    report["other_containers_at_start"] = others_running()
    report["teardown_before"] = teardown()  # an earlier run's leftovers (only the bench's label)
    log("create the hosts")
    rc, wall, out, stderr = playbook("molecule/fleet/create.yml", INVENTORIES[2], FLEET_VARS, 1800, "create")
    if rc != 0:
        raise BenchError("create.yml failed: %s" % failure_text(out, stderr))
    report["create_s"] = wall
    log("converge (deploy.yml on hosts-1.yml: five hosts, one server per color)")
    rc, wall, out, stderr = playbook("playbooks/deploy.yml", INVENTORIES[1], {}, 3600, "converge")
    report["converge_s"] = wall
    if rc != 0:
        raise BenchError("converge failed: %s" % failure_text(out, stderr))
    gateway = gateway_access()
    for index, (servers, inventory) in enumerate(plan(args.per_config, INVENTORIES)):
        if time.monotonic() > args.deadline - 900:
            report["skipped"].append({"index": index, "servers_per_color": servers, "why": "--budget nearly spent"})
            continue
        report["releases"].append(one_release(index, servers, inventory, gateway, args))
        time.sleep(5)


def write(report, out):
    """The per-configuration figures from the releases' records, then the JSON object: stdout and ``out``."""
    for servers in (1, 2):
        report["%d_server%s_per_color" % (servers, "" if servers == 1 else "s")] = summarize_config(
            [r for r in report["releases"] if r["servers_per_color"] == servers])
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    pathlib.Path(out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(out).write_text(text + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-config", type=int, default=2, help="releases with 1, then with 2 servers per color")
    ap.add_argument("--workers", type=int, default=2, help="load workers (half streaming); 1-2: llama.cpp is slow here")
    ap.add_argument("--settle", type=float, default=10, help="seconds of load before each release")
    ap.add_argument("--after", type=float, default=120, help="at most this long after a release for new answers")
    ap.add_argument("--budget", type=float, default=9000, help="seconds; no release starts in its last 15 min")
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench-results" / ("bench-fleet-%s.json" % time.strftime("%Y-%m-%d"))))
    ap.add_argument("--keep", action="store_true", help="leave the fleet running at the end")
    ap.add_argument("--summarize", metavar="FILE", nargs="+",
                    help="no fleet: recompute the figures of FILE (an earlier result); of several, print them combined")
    args = ap.parse_args()
    if args.summarize:
        reports = [json.loads(pathlib.Path(f).read_text()) for f in args.summarize]
        if len(reports) == 1:
            write(reports[0], args.summarize[0])
        else:
            combined = {"combined": args.summarize, "releases": [r for rep in reports for r in rep["releases"]]}
            print(json.dumps({k: summarize_config([r for r in combined["releases"] if r["servers_per_color"] == n])
                              for n, k in ((1, "1_server_per_color"), (2, "2_servers_per_color"))}, indent=2))
        return
    if not 1 <= args.workers <= 4:
        ap.error("--workers must be 1 to 4: each color's llama.cpp answers about 1 request per 15 s here")
    args.deadline = time.monotonic() + args.budget
    # SIGTERM (make stopped, a CI limit) runs the teardown too.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit("bench-fleet: terminated"))
    report = {"bench": "fleet", "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
              "load": {"workers": args.workers, "stream_share": 0.5, "max_tokens": 8, "through": "%s:%d" % (ADDRESS, PORT)},
              "host_cpu_shares": 512, "releases": [], "skipped": [], "error": None}
    t0 = time.monotonic()
    try:
        run(args, report)
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        report["error"] = str(exc)
        log("FAILED: %s" % exc)
    finally:
        report["other_containers_at_end"] = others_running()
        report["teardown"] = {"skipped": "--keep"} if args.keep else teardown()
        report["total_s"] = round(time.monotonic() - t0, 1)
        write(report, args.out)
    failed = report["error"] or any(not r["ok"] for r in report["releases"])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
