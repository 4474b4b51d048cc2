"""Issue #6 point 4: a switch that dies after the nginx reload, then the reconcile that repairs it.

If state.json cannot be written, or the play is killed, after the reload, nginx serves the
new color while state.json names the old one. These tests make that happen for real on a
deployed service (env LLMOPS_SERVICE, LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY; both colors
running, e.g. after two releases) while a load generator sends requests to the gateway on
127.0.0.1, then run tests/integration/playbooks/reconcile.yml (what every play that can
switch does first) and check: state.json is repaired to what is served, the repair and the
lock takeover are audited, no client request failed.

- an immutable state.json (chattr +i: even root's rename over it fails with EPERM);
- the ansible-playbook running the switch killed with SIGKILL (with every process below it)
  after the reload, during verification: its lock stays behind with a dead pid.
"""
import http.client
import json
import os
import pathlib
import re
import signal
import ssl
import subprocess
import sys
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "bench"))
from loadgen import LoadGen, summarize  # noqa: E402
from _stack import assert_load_clean  # noqa: E402

SERVICE = os.environ.get("LLMOPS_SERVICE", "")
PORT = int(os.environ.get("LLMOPS_HTTPS_PORT", "0") or 0)
INVENTORY = os.environ.get("LLMOPS_INVENTORY", "")
STATE_DIR = pathlib.Path("/var/lib/llmops") / SERVICE
PLAYBOOKS = ROOT / "tests" / "integration" / "playbooks"
CACERT = STATE_DIR / "gateway" / "tls" / "gateway.crt"

pytestmark = pytest.mark.skipif(not (SERVICE and PORT and INVENTORY),
                                reason="needs a deployed service: set LLMOPS_SERVICE, LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY")


def playbook(name, extra=None, popen=False, timeout=300):
    args = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", INVENTORY, str(PLAYBOOKS / name),
            "-e", json.dumps(extra or {})]
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    if popen:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    proc.stdout = " ".join(proc.stdout.split())  # the callback wraps long messages anywhere
    return proc


def state():
    return json.loads((STATE_DIR / "state.json").read_text())


def audit():
    return [json.loads(line) for line in (STATE_DIR / "audit.log").read_text().splitlines()]


def read_lock():
    path = STATE_DIR / "lock"
    return json.loads(path.read_text()) if path.exists() else None


def get_health(context):
    """GET /health through the gateway on a new connection: ``(status, X-QA-Color, body color)``."""
    conn = http.client.HTTPSConnection("127.0.0.1", PORT, timeout=10, context=context)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        body = json.loads(response.read().decode())
    finally:
        conn.close()
    return response.status, response.getheader("X-QA-Color"), body.get("color")


def served(count=10):
    """Colors that serve /health through the gateway, each request on a new connection."""
    context = ssl.create_default_context(cafile=str(CACERT))
    seen = {}
    for dummy in range(count):
        status, header, color = get_health(context)
        assert status == 200 and header == color, (status, header, color)
        seen[color] = seen.get(color, 0) + 1
    return seen


class HealthLoad:
    """GET /health through the gateway on new connections, as fast as a reload would show a gap.

    Bounded: at most ``max_seconds`` and 20 requests a second, to 127.0.0.1 only.
    """

    def __init__(self, max_seconds=300):
        self.max_seconds = max_seconds
        self.results = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        context = ssl.create_default_context(cafile=str(CACERT))
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                status, header, color = get_health(context)
                self.results.append((time.time(), status == 200 and header == color, header or "", status))
            except (OSError, ValueError, http.client.HTTPException) as exc:
                self.results.append((time.time(), False, "", repr(exc)))
            time.sleep(0.05)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=30)
        return self.results


def running(container):
    out = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", container],
                         capture_output=True, text=True, check=False).stdout.strip()
    return out == "true"


def descendants(pid):
    """Pids of every process below ``pid`` (this test started them)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/status" % entry) as handle:
                    ppid = int(next(line.split()[1] for line in handle if line.startswith("PPid:")))
            except (OSError, StopIteration):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture
def colors():
    """``(active, other)``: both running, state.json in sync with the gateway, no lock held."""
    active = state()["active"]
    other = "green" if active == "blue" else "blue"
    if not running("%s-qa-%s" % (SERVICE, other)):
        pytest.skip("needs both colors running (%s-qa-%s is not): deploy twice" % (SERVICE, other))
    assert read_lock() is None, "a lock is held: %s" % read_lock()
    assert served() == {active: 10}, "state.json is not in sync: run tests/integration/playbooks/reconcile.yml"
    return active, other


@pytest.fixture
def under_load():
    key = pathlib.Path(os.path.expanduser("~/.config/llmops/%s/api_key" % SERVICE)).read_text().strip()
    gen = LoadGen(base_url="https://127.0.0.1:%d/v1" % PORT, api_key=key, cacert=str(CACERT), workers=2,
                  max_seconds=300).start()
    health = HealthLoad().start()
    t0 = time.time()
    yield
    checks = health.stop()
    results = gen.stop()
    summary = summarize(results)
    colors = {}
    for dummy, ok, color, dummy2 in checks:
        colors[color] = colors.get(color, 0) + 1
    print("\nload: chat %s; /health on new connections: %d, failed %d, by color %s"
          % (summary, len(checks), sum(1 for c in checks if not c[1]), colors))
    assert_load_clean(results, t0)
    assert len(checks) > 50, "the /health load sent only %d requests" % len(checks)
    assert [c for c in checks if not c[1]] == [], "failed /health requests through the gateway"


def check_repaired(proc, old, new, audits):
    """The reconcile playbook repaired state.json to ``new`` and audited it."""
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert ("RECONCILE: repaired state.json of %s: it named active %s" % (SERVICE, old)) in proc.stdout, \
        proc.stdout[-3000:]
    assert "the gateway serves %s" % new in proc.stdout
    now = state()
    assert (now["active"], now["previous"]) == (new, old)
    assert now["weights"][new] == 100 and now["weights"][old] == 0
    record = [r for r in audit()[audits:] if r.get("action") == "reconcile"][-1]
    assert (record["from"], record["to"], record["operator"], record["result"]) == (old, new, "it-reconcile", "ok")
    assert record["before"]["active"] == old and record["serial"] == now["serial"]
    assert read_lock() is None
    assert served() == {new: 10}


def test_state_write_refused_after_the_reload_is_repaired(colors, under_load):
    old, new = colors
    path = STATE_DIR / "state.json"
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        proc = playbook("switch.yml", {"it_color": new})
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0
    assert "nginx now serves %s, but %s could not be written" % (new, path) in out, out[-3000:]
    assert state()["active"] == old and served() == {new: 10}
    assert audit()[-1]["result"].startswith("failed: nginx now serves %s" % new)
    audits = len(audit())
    check_repaired(playbook("reconcile.yml"), old, new, audits)
    again = playbook("reconcile.yml")
    assert again.returncode == 0 and "matches what the gateway serves (%s)" % new in again.stdout, again.stdout[-2000:]
    assert len(audit()) == audits + 1, "a reconcile in sync must not audit"


def test_play_killed_after_the_reload_is_repaired_and_its_lock_taken_over(colors, under_load):
    old, new = colors
    audits = len(audit())
    conf = STATE_DIR / "nginx" / "upstreams.conf"
    proc = playbook("switch.yml", {"it_color": new, "it_verify_count": 1000}, popen=True)
    try:
        deadline = time.time() + 120
        while True:  # reloaded: the file routes the new color and requests reach it
            assert proc.poll() is None, "the switch play ended before it was killed: %s" % proc.stdout.read()[-3000:]
            assert time.time() < deadline, "the switch did not reload within 120 s"
            if re.search(r"^# weights:.* %s=100" % new, conf.read_text(), re.M) and served(3) == {new: 3}:
                break
            time.sleep(0.2)
        lock = read_lock()
        assert lock and lock["operation"] == "it-switch"
    finally:
        for pid in [proc.pid] + descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
    # The play's pid: the ansible-playbook process we started, not the module's.
    assert (lock["pid"], lock["pid_of"]) == (proc.pid, "play"), lock
    assert read_lock() == lock, "the killed play's lock should still be there"
    assert state()["active"] == old and served() == {new: 10}
    assert len(audit()) == audits, "the killed switch wrote no audit line"

    rec = playbook("reconcile.yml")
    assert ("TAKEOVER: the ansible-playbook process %d that held it is gone" % proc.pid) in rec.stdout, \
        rec.stdout[-3000:]
    takeover = [r for r in audit()[audits:] if r.get("action") == "takeover"]
    assert len(takeover) == 1 and takeover[0]["lock"]["pid"] == proc.pid
    assert takeover[0]["lock"]["operation"] == "it-switch" and takeover[0]["operator"] == "it-reconcile"
    assert "token" not in takeover[0]["lock"]
    check_repaired(rec, old, new, audits)
