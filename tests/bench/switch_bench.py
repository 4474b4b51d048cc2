"""make bench-switch: releases and rollbacks back to back under real load.

Needs the service deployed on the local inventory (`make deploy`). Sends
concurrent streaming and non-streaming requests to the gateway with the openai
SDK while it runs releases (each with one document changed) and rollbacks, then
measures the same load against naive updates (restart of the serving
container, restart of nginx) in the same run. Prints one JSON object.
Traffic goes to 127.0.0.1 only; every loop is bounded.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from loadgen import LoadGen, color_violations, summarize  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The release role's switch task, "Send all traffic to <color>" (not "... back to ..." after a failure).
SWITCH_TASK = "Send all traffic to "


def run_playbook(playbook, extra_vars, inventory=None):
    """Run a playbook with the json callback; return (wall seconds, rc, parsed output)."""
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    cmd = [str(ROOT / ".venv/bin/ansible-playbook"), str(ROOT / "playbooks" / playbook)]
    if inventory:
        cmd += ["-i", inventory]
    for k, v in extra_vars.items():
        cmd += ["-e", "%s=%s" % (k, v)]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
    wall = time.monotonic() - t0
    try:
        out = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        out = {}
    return wall, proc.returncode, out, proc


def task_result(out, name):
    for play in out.get("plays", []):
        for task in play.get("tasks", []):
            if task["task"]["name"].split(" : ")[-1].startswith(name):
                for res in task["hosts"].values():
                    if not res.get("skipped"):
                        return res
    return None


def failure_text(out, proc):
    for play in out.get("plays", []):
        for task in play.get("tasks", []):
            for res in task["hosts"].values():
                if res.get("failed"):
                    return "%s: %s" % (task["task"]["name"], res.get("msg", ""))
    return (proc.stderr or proc.stdout)[-2000:]


def read_audit(state_dir, since):
    path = pathlib.Path(state_dir) / "audit.log"
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return [e for e in entries if e.get("result") == "ok" and iso_to_epoch(e["time"]) >= since]


def iso_to_epoch(value):
    from datetime import datetime
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def active_color(state_dir):
    return json.loads((pathlib.Path(state_dir) / "state.json").read_text())["active"]


def wait_ready(container, timeout=300):
    probe = ("import json,urllib.request;"
             "print(json.load(urllib.request.urlopen('http://127.0.0.1:8000/health',timeout=3))['status'])")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = subprocess.run(["docker", "exec", container, "python3", "-c", probe], capture_output=True, text=True, check=False)
        if p.stdout.strip() == "ready":
            return True
        time.sleep(1)
    return False


def naive(load_args, label, action, settle):
    gen = LoadGen(**load_args).start()
    time.sleep(settle)
    t0 = time.monotonic()
    action()
    seconds = time.monotonic() - t0
    time.sleep(settle)
    results = gen.stop()
    return dict(summarize(results), method=label, update_seconds=round(seconds, 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--service", default="qa")
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--releases", type=int, default=6)
    ap.add_argument("--rollbacks", type=int, default=5)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--inventory", default=None)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--assert-zero", action="store_true", help="exit 1 unless 0 failed and 0 truncated")
    args = ap.parse_args()

    state_dir = "/var/lib/llmops/%s" % args.service
    key = pathlib.Path(os.path.expanduser("~/.config/llmops/%s/api_key" % args.service)).read_text().strip()
    load_args = dict(base_url="https://127.0.0.1:%d/v1" % args.port, api_key=key,
                     cacert="%s/gateway/tls/gateway.crt" % state_dir, workers=args.workers, max_seconds=3600)

    docs = pathlib.Path(tempfile.mkdtemp(prefix="llmops-bench-docs-"))
    shutil.copytree(ROOT / "examples" / "docs", docs, dirs_exist_ok=True)
    # Bring the service to the bench's documents first, outside the measured window. All load comes
    # from 127.0.0.1, so the gateway's per-address rate limit is off while the bench runs.
    deploy_vars = {"knowledge_base_src": docs, "gateway_rate_limit_rps": 0, "gateway_key_rate_limit_rps": 0,
                   "gateway_key_concurrency": 0}
    wall, rc, out, proc = run_playbook("deploy.yml", deploy_vars, args.inventory)
    if rc != 0:
        sys.exit("initial deploy failed: %s" % failure_text(out, proc))

    ops = []
    for i in range(max(args.releases, args.rollbacks + 1)):
        if i < args.releases:
            ops.append("release")
        if i < args.rollbacks:
            ops.append("rollback")

    start = time.time()
    switches = [(0.0, active_color(state_dir))]
    gen = LoadGen(**load_args).start()
    time.sleep(3)
    release_walls, switch_secs, to_all, rollback_walls, failures = [], [], [], [], []
    for n, op in enumerate(ops):
        if op == "release":
            with open(docs / "vpn-howto.txt", "a", encoding="utf-8") as fh:
                fh.write("\nRevision note %d: reviewed by the IT Service Desk.\n" % n)
            wall, rc, out, proc = run_playbook("deploy.yml", deploy_vars, args.inventory)
            res = task_result(out, SWITCH_TASK) or {}
            if rc == 0:
                release_walls.append(wall)
                if res.get("seconds"):
                    switch_secs.append(res["seconds"]["total"])
                if res.get("all_target_seconds") is not None:
                    to_all.append(res["all_target_seconds"])
        else:
            wall, rc, out, proc = run_playbook("rollback.yml", {}, args.inventory)
            if rc == 0:
                rollback_walls.append(wall)
        if rc != 0:
            failures.append("%s %d: %s" % (op, n, failure_text(out, proc)))
        time.sleep(2)
    time.sleep(3)
    results = gen.stop()
    for entry in read_audit(state_dir, start):
        switches.append((iso_to_epoch(entry["time"]), entry["to"]))
    bad_colors = color_violations(results, sorted(switches))

    def p50(xs):
        return round(statistics.median(xs), 3) if xs else None

    report = dict(summarize(results))
    report.update({
        "operations": ops,
        "operation_failures": failures,
        "releases_ok": len(release_walls),
        "rollbacks_ok": len(rollback_walls),
        "color_mismatches": len(bad_colors),
        "switch_module_seconds": {"p50": p50(switch_secs), "max": round(max(switch_secs), 3) if switch_secs else None},
        "seconds_to_100pct_new_color": {"p50": p50(to_all), "max": round(max(to_all), 3) if to_all else None},
        "release_wall_seconds": {"p50": p50(release_walls), "max": round(max(release_walls), 1) if release_walls else None},
        "rollback_wall_seconds": {"p50": p50(rollback_walls), "max": round(max(rollback_walls), 2) if rollback_walls else None},
    })
    if not args.skip_naive:
        active = active_color(state_dir)
        report["naive_restart_qa_container"] = naive(
            load_args, "docker restart of the serving qa-api container",
            lambda: (subprocess.run(["docker", "restart", "%s-qa-%s" % (args.service, active)], check=True),
                     wait_ready("%s-qa-%s" % (args.service, active))), settle=5)
        report["naive_restart_nginx"] = naive(
            load_args, "docker restart of the gateway (nginx restart instead of reload)",
            lambda: subprocess.run(["docker", "restart", "%s-gateway" % args.service], check=True), settle=5)
    shutil.rmtree(docs, ignore_errors=True)
    print(json.dumps(report, indent=2))
    if args.assert_zero and (report["requests_failed"] or report["streams_truncated"] or failures
                             or report["color_mismatches"]):
        sys.exit("bench --assert-zero: %d failed requests, %d truncated streams, %d color "
                 "mismatches, %d failed operations; errors: %s; operations: %s"
                 % (report["requests_failed"], report["streams_truncated"],
                    report["color_mismatches"], len(failures), report["errors"], failures))


if __name__ == "__main__":
    main()
