"""retire.yml never stops the color that takes traffic, and acts only under the service lock.

Runs against a service deployed by Molecule scenario `bluegreen` (env LLMOPS_SERVICE,
LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY): a release first, so a previous color exists.
"""
import json
import shutil
import time
import uuid

import pytest

from _stack import ROOT, SERVICE, STATE_DIR, load, lock, needs_stack, playbook, running, state, summarize, unlock

pytestmark = needs_stack


def qa(color):
    return "%s-qa-%s" % (SERVICE, color)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A release with a changed document: the active color and a running previous one."""
    docs = tmp_path_factory.mktemp("retire") / "docs"
    shutil.copytree(ROOT / "examples" / "docs", docs)
    with open(docs / "vpn-howto.txt", "a", encoding="utf-8") as fh:
        fh.write("\nRetire test revision %s.\n" % uuid.uuid4().hex[:8])
    proc = playbook("playbooks/deploy.yml", {"knowledge_base_src": str(docs)})
    assert proc.returncode == 0, proc.stdout[-3000:]
    now = state()
    assert now["previous"] and running(qa(now["active"])) and running(qa(now["previous"])), now
    return now


def test_retire_waits_for_the_service_lock(released):
    token = lock("maintenance")
    try:
        proc = playbook("playbooks/retire.yml", {"retire_force": True})
        assert proc.returncode != 0
        assert "locked by" in proc.stdout and "maintenance" in proc.stdout, proc.stdout[-3000:]
        assert running(qa(released["active"])) and running(qa(released["previous"]))
    finally:
        unlock(token)


def test_retire_never_stops_the_active_color_even_from_a_wrong_state(released):
    # A state whose "previous" names the active color (hand edit, bug): nothing may stop it.
    path = STATE_DIR / "state.json"
    original = path.read_text()
    wrong = json.loads(original)
    wrong["previous"] = wrong["active"]
    path.write_text(json.dumps(wrong, indent=2, sort_keys=True) + "\n")
    try:
        proc = playbook("playbooks/retire.yml", {"retire_force": True})
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert "no previous color to retire" in proc.stdout, proc.stdout[-3000:]
        assert running(qa(released["active"])) and running(qa(released["previous"]))
    finally:
        path.write_text(original)


def test_retire_under_load_stops_only_the_previous_color(released):
    gen = load(max_seconds=300)
    time.sleep(2)
    try:
        proc = playbook("playbooks/retire.yml", {"retire_force": True})
    finally:
        results = gen.stop()
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = summarize(results)
    assert summary["requests_total"] > 0 and summary["requests_failed"] == 0, summary
    assert summary["streams_truncated"] == 0, summary
    after = state()
    assert after["active"] == released["active"]
    assert running(qa(released["active"])) and not running(qa(released["previous"]))
    assert released["previous"] not in after["colors"], "the retired color must leave the gateway state"
    last = json.loads((STATE_DIR / "audit.log").read_text().splitlines()[-1])
    assert last["action"] == "retire" and last["result"] == "ok", last
