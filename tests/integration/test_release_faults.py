"""Failed releases leave the old color serving, with 0 failed client requests.

Runs against a service deployed by Molecule scenario `bluegreen` (env
LLMOPS_SERVICE, LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY). Each test starts a real
release that must fail for one cause while a load generator sends requests to
the gateway on 127.0.0.1, then checks: the play failed naming the cause, the
active color and the gateway config are unchanged, no request failed. That a
good release still goes through after these faults (no lock or half state left)
is test_gate's last test, which runs after these in the same pytest.
"""
import shutil
import time
import uuid

import pytest

from _stack import RELEASE_ONLY, ROOT, STATE_DIR, assert_load_clean, audit, load, lock, needs_stack, playbook, state, unlock

pytestmark = needs_stack


def deploy(docs, extra=None):
    return playbook("playbooks/deploy.yml", dict(RELEASE_ONLY, **dict(extra or {}, knowledge_base_src=str(docs))))


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
    gen = load()
    before = state()
    conf = (STATE_DIR / "nginx" / "upstreams.conf").read_text()
    t0 = time.time()
    yield before
    results = gen.stop()
    assert_load_clean(results, t0)
    assert state()["active"] == before["active"], "a failed release changed the active color"
    assert (STATE_DIR / "nginx" / "upstreams.conf").read_text() == conf, "a failed release left a new gateway config"
    colors = {r.color for r in results if r.ok}
    assert colors == {before["active"]}, "traffic reached %s during a failed release" % colors


def test_idle_color_never_healthy(docs, under_load):
    # The new color cannot reach inference, so it never becomes ready.
    proc = deploy(docs, {"qa_service_extra_env": {"QA_LLM_BASE_URL": "http://127.0.0.1:9/v1"},
                         "qa_service_ready_timeout": 20})
    assert proc.returncode != 0
    assert "did not become ready" in proc.stdout, proc.stdout[-3000:]


def test_idle_color_reports_other_kb_checksum(docs, under_load):
    proc = deploy(docs, {"qa_service_kb_checksum": "0" * 64})
    assert proc.returncode != 0
    assert "expected " + "0" * 64 in proc.stdout, proc.stdout[-3000:]


def test_rendered_config_fails_nginx_t(docs, under_load):
    audits = len(audit())
    # An operator value nginx refuses: the module leaves judging it to nginx -t.
    proc = deploy(docs, {"release_upstream_keepalive": 0})
    assert proc.returncode != 0
    assert "nginx -t" in proc.stdout, proc.stdout[-3000:]
    assert len(audit()) == audits + 1, "a failed switch must leave one audit line"
    last = audit()[-1]
    assert last["result"].startswith("failed"), last


def test_lock_held_by_another_deploy(docs, under_load):
    token = lock("maintenance")
    try:
        proc = deploy(docs)
        assert proc.returncode != 0
        out = proc.stdout
        assert "locked by" in out and "maintenance" in out and "since" in out, out[-3000:]
    finally:
        unlock(token)
