"""retire.yml never stops the color that takes traffic, and acts only under the service lock.

Runs against a service deployed by Molecule scenario `bluegreen` (env LLMOPS_SERVICE,
LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY): a release first, so a previous color exists.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "bench"))
from loadgen import LoadGen, summarize  # noqa: E402

SERVICE = os.environ.get("LLMOPS_SERVICE", "")
PORT = int(os.environ.get("LLMOPS_HTTPS_PORT", "0") or 0)
INVENTORY = os.environ.get("LLMOPS_INVENTORY", "")
STATE_DIR = pathlib.Path("/var/lib/llmops") / SERVICE

pytestmark = pytest.mark.skipif(not (SERVICE and PORT and INVENTORY),
                                reason="needs a deployed service: run through molecule scenario bluegreen")


def ansible(args, env=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **(env or {}))
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False)


def playbook(name, extra=None):
    return ansible([str(ROOT / ".venv/bin/ansible-playbook"), "-i", INVENTORY, "playbooks/%s" % name,
                    "-e", json.dumps(extra or {})])


def state():
    return json.loads((STATE_DIR / "state.json").read_text())


def running(color):
    out = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", "%s-qa-%s" % (SERVICE, color)],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() == "true"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A release with a changed document: the active color and a running previous one."""
    docs = tmp_path_factory.mktemp("retire") / "docs"
    shutil.copytree(ROOT / "examples" / "docs", docs)
    with open(docs / "vpn-howto.txt", "a", encoding="utf-8") as fh:
        fh.write("\nRetire test revision %s.\n" % uuid.uuid4().hex[:8])
    proc = playbook("deploy.yml", {"knowledge_base_src": str(docs)})
    assert proc.returncode == 0, proc.stdout[-3000:]
    now = state()
    assert now["previous"] and running(now["active"]) and running(now["previous"]), now
    return now


def test_retire_waits_for_the_service_lock(released):
    take = ansible([str(ROOT / ".venv/bin/ansible"), "-i", INVENTORY, "llmops", "-m", "llmops.bluegreen.bluegreen_lock",
                    "-a", "service=%s state=present operation=maintenance ttl=300" % SERVICE],
                   env={"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    assert take.returncode == 0, take.stdout + take.stderr
    token = json.loads(take.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["token"]
    try:
        proc = playbook("retire.yml", {"retire_force": True})
        assert proc.returncode != 0
        assert "locked by" in proc.stdout and "maintenance" in proc.stdout, proc.stdout[-3000:]
        assert running(released["active"]) and running(released["previous"])
    finally:
        ansible([str(ROOT / ".venv/bin/ansible"), "-i", INVENTORY, "llmops", "-m", "llmops.bluegreen.bluegreen_lock",
                 "-a", "service=%s state=absent token=%s" % (SERVICE, token)])


def test_retire_never_stops_the_active_color_even_from_a_wrong_state(released):
    # A state whose "previous" names the active color (hand edit, bug): nothing may stop it.
    path = STATE_DIR / "state.json"
    original = path.read_text()
    wrong = json.loads(original)
    wrong["previous"] = wrong["active"]
    path.write_text(json.dumps(wrong, indent=2, sort_keys=True) + "\n")
    try:
        proc = playbook("retire.yml", {"retire_force": True})
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert "no previous color to retire" in proc.stdout, proc.stdout[-3000:]
        assert running(released["active"]) and running(released["previous"])
    finally:
        path.write_text(original)


def test_retire_under_load_stops_only_the_previous_color(released):
    key = pathlib.Path(os.path.expanduser("~/.config/llmops/%s/api_key" % SERVICE)).read_text().strip()
    gen = LoadGen(base_url="https://127.0.0.1:%d/v1" % PORT, api_key=key,
                  cacert=str(STATE_DIR / "gateway" / "tls" / "gateway.crt"), workers=2, max_seconds=300).start()
    time.sleep(2)
    try:
        proc = playbook("retire.yml", {"retire_force": True})
    finally:
        results = gen.stop()
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = summarize(results)
    assert summary["requests_total"] > 0 and summary["requests_failed"] == 0, summary
    assert summary["streams_truncated"] == 0, summary
    after = state()
    assert after["active"] == released["active"]
    assert running(released["active"]) and not running(released["previous"])
    assert released["previous"] not in after["colors"], "the retired color must leave the gateway state"
    last = json.loads((STATE_DIR / "audit.log").read_text().splitlines()[-1])
    assert last["action"] == "retire" and last["result"] == "ok", last
