"""Failed releases leave the old color serving, with 0 failed client requests.

Runs against a service deployed by Molecule scenario `bluegreen` (env
LLMOPS_SERVICE, LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY). Each test starts a real
release that must fail for one cause while a load generator sends requests to
the gateway on 127.0.0.1, then checks: the play failed naming the cause, the
active color and the gateway config are unchanged, no request failed.
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


def ansible(args, timeout=1200, env=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **(env or {}))
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def deploy(docs, extra=None):
    extra_vars = dict(extra or {}, knowledge_base_src=str(docs))
    return ansible([str(ROOT / ".venv/bin/ansible-playbook"), "-i", INVENTORY, "playbooks/deploy.yml",
                    "-e", json.dumps(extra_vars)])


def state():
    return json.loads((STATE_DIR / "state.json").read_text())


def audit_count():
    path = STATE_DIR / "audit.log"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture
def docs(tmp_path):
    """A copy of the example documents with one changed, so a release is due."""
    d = tmp_path / "docs"
    shutil.copytree(ROOT / "examples" / "docs", d)
    with open(d / "vpn-howto.txt", "a", encoding="utf-8") as fh:
        fh.write("\nFault test revision %s.\n" % uuid.uuid4().hex[:8])
    return d


@pytest.fixture
def under_load():
    key = pathlib.Path(os.path.expanduser("~/.config/llmops/%s/api_key" % SERVICE)).read_text().strip()
    gen = LoadGen(base_url="https://127.0.0.1:%d/v1" % PORT, api_key=key,
                  cacert=str(STATE_DIR / "gateway" / "tls" / "gateway.crt"), workers=2, max_seconds=900).start()
    before = state()
    conf = (STATE_DIR / "nginx" / "upstreams.conf").read_text()
    t0 = time.time()
    yield before
    results = gen.stop()
    summary = summarize(results)
    failed = ["%.1fs %s %s" % (r.start - t0, r.kind, r.error) for r in results if not r.ok]
    assert summary["requests_total"] > 0, "the load generator sent nothing"
    assert summary["requests_failed"] == 0, (summary, failed)
    assert summary["streams_truncated"] == 0, summary
    assert state()["active"] == before["active"], "a failed release changed the active color"
    assert (STATE_DIR / "nginx" / "upstreams.conf").read_text() == conf, "a failed release left a new gateway config"
    colors = {r.color for r in results if r.ok}
    assert colors == {before["active"]}, "traffic reached %s during a failed release" % colors


def test_idle_color_never_healthy(docs, under_load):
    # The new color cannot reach inference, so it never becomes ready.
    proc = deploy(docs, {"qa_service_extra_env": {"QA_LLM_BASE_URL": "http://127.0.0.1:9/v1"},
                         "qa_service_ready_timeout": 45})
    assert proc.returncode != 0
    assert "did not become ready" in proc.stdout, proc.stdout[-3000:]


def test_idle_color_reports_other_kb_checksum(docs, under_load):
    proc = deploy(docs, {"qa_service_kb_checksum": "0" * 64})
    assert proc.returncode != 0
    assert "expected " + "0" * 64 in proc.stdout, proc.stdout[-3000:]


def test_rendered_config_fails_nginx_t(docs, under_load):
    audits = audit_count()
    # An operator value nginx refuses: the module leaves judging it to nginx -t.
    proc = deploy(docs, {"release_upstream_keepalive": 0})
    assert proc.returncode != 0
    assert "nginx -t" in proc.stdout, proc.stdout[-3000:]
    assert audit_count() == audits + 1, "a failed switch must leave one audit line"
    last = json.loads((STATE_DIR / "audit.log").read_text().splitlines()[-1])
    assert last["result"].startswith("failed"), last


def test_lock_held_by_another_deploy(docs, under_load):
    take = ansible([str(ROOT / ".venv/bin/ansible"), "-i", INVENTORY, "llmops", "-m", "llmops.bluegreen.bluegreen_lock",
                    "-a", "service=%s state=present operation=maintenance" % SERVICE],
                   env={"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    assert take.returncode == 0, take.stdout + take.stderr
    token = json.loads(take.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["token"]
    try:
        proc = deploy(docs)
        assert proc.returncode != 0
        out = proc.stdout
        assert "locked by" in out and "maintenance" in out and "since" in out, out[-3000:]
    finally:
        ansible([str(ROOT / ".venv/bin/ansible"), "-i", INVENTORY, "llmops", "-m", "llmops.bluegreen.bluegreen_lock",
                 "-a", "service=%s state=absent token=%s" % (SERVICE, token)])


def test_release_after_faults_succeeds(docs):
    before = state()["active"]
    proc = deploy(docs)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert state()["active"] != before
