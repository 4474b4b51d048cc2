"""kb_refresh.yml releases a knowledge base only when it changed; retire.yml never stops the
color that takes traffic, and acts only under the service lock.

Runs against a service deployed by Molecule scenario `canary` (env LLMOPS_SERVICE,
LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY). The refresh of a changed document is the release
the retire tests need: an active color and a running previous one.
"""
import json
import re
import shutil
import subprocess
import time
import uuid

import pytest

from _stack import (AWX_OPERATOR, RELEASE_ONLY, ROOT, SERVICE, STATE_DIR, audit, assert_load_clean, awx_playbook, load, lock, needs_stack, playbook,
                    running, state, unlock)

pytestmark = needs_stack


def flat(text):
    """Play output with its line wrapping undone (the callback folds long messages)."""
    return " ".join(text.split())


def qa(color):
    return "%s-qa-%s" % (SERVICE, color)


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    """A copy of the documents the service was deployed with."""
    path = tmp_path_factory.mktemp("refresh") / "docs"
    shutil.copytree(ROOT / "examples" / "docs", path)
    return path


@pytest.fixture(scope="module")
def refreshed_unchanged(docs):
    """kb_refresh.yml over the documents the active color already serves."""
    # An earlier test may have released other documents: the first run makes the active color
    # serve these (a release only then), the second must find them unchanged.
    converge = playbook("playbooks/kb_refresh.yml", dict(RELEASE_ONLY, knowledge_base_src=str(docs)))
    assert converge.returncode == 0, converge.stdout[-3000:]
    before, lines = state(), len(audit())
    proc = playbook("playbooks/kb_refresh.yml", dict(RELEASE_ONLY, knowledge_base_src=str(docs)))
    return before, lines, proc


@pytest.fixture(scope="module")
def released(docs, refreshed_unchanged):  # pylint: disable=redefined-outer-name,unused-argument
    """kb_refresh.yml after a document changed, run as an AWX job (ansible-runner, a project copy,
    a virtualenv with only the execution environment's packages): a release, the active color
    and a running previous one."""
    before = state()
    with open(docs / "vpn-howto.txt", "a", encoding="utf-8") as fh:
        fh.write("\nRefresh test revision %s.\n" % uuid.uuid4().hex[:8])
    proc = awx_playbook("playbooks/kb_refresh.yml", dict(RELEASE_ONLY, knowledge_base_src=str(docs)), "kb-refresh")
    assert (proc.status, proc.returncode) == ("successful", 0), (proc.failures, proc.stdout[-3000:])
    assert "changed: %s -> " % before["colors"][before["active"]]["kb_version"] in flat(proc.stdout), \
        proc.stdout[-3000:]
    now = state()
    assert now["active"] != before["active"] and now["serial"] > before["serial"], now
    assert now["colors"][now["active"]]["kb_version"] != before["colors"][before["active"]]["kb_version"]
    assert now["previous"] and running(qa(now["active"])) and running(qa(now["previous"])), now
    return now


def test_an_unchanged_knowledge_base_releases_nothing(refreshed_unchanged):
    before, lines, proc = refreshed_unchanged
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "unchanged (%s, served by %s); nothing to release" % (
        before["colors"][before["active"]]["kb_version"], before["active"]) in flat(proc.stdout), proc.stdout[-3000:]
    assert state()["serial"] == before["serial"] and len(audit()) == lines


def test_a_changed_knowledge_base_is_released(released):
    last = audit()[-1]
    assert last["action"] == "switch" and last["result"] == "ok" and last["to"] == released["active"], last
    # released by the AWX job: its audit line names the AWX user and job
    assert last["operator"] == AWX_OPERATOR, last


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


def llm(color):
    return "%s-llm-%s" % (SERVICE, color)


def health(color):
    out = subprocess.run(["docker", "exec", qa(color), "python", "-c",
                          "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/health').read().decode())"],
                         capture_output=True, text=True, check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def test_a_cold_color_is_woken_by_a_rollback_under_load(released):
    proc = playbook("playbooks/retire.yml", {"retire_force": True, "retire_mode": "cold"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    cold, active = released["previous"], released["active"]
    assert not running(llm(cold)) and running(qa(cold)) and running(llm(active))
    assert cold in state()["colors"], "a cold color stays in the gateway state for a rollback"
    cold_line = audit()[-1]
    assert (cold_line["action"], cold_line["color"], cold_line["result"]) == ("retire_cold", cold, "ok"), cold_line
    lines_before_rollback = len(audit())
    deadline = time.time() + 60
    while health(cold).get("status") != "loading" and time.time() < deadline:
        time.sleep(2)
    assert "inference server stopped" in (health(cold).get("detail") or ""), health(cold)
    gen, since = load(max_seconds=600), time.time()
    time.sleep(2)
    try:
        proc = awx_playbook("playbooks/rollback.yml", name="rollback")  # as an AWX job template runs it
    finally:
        results = gen.stop()
    assert proc.returncode == 0, (proc.failures, proc.stdout[-3000:])
    assert re.search(r"%s was cold on localhost: awake and ready in [0-9.]+ s" % cold, flat(proc.stdout)), proc.stdout[-3000:]
    assert state()["active"] == cold and running(llm(cold))
    actions = [(line["action"], line.get("color", line.get("to")), line["operator"])
               for line in audit()[lines_before_rollback:]]
    assert actions == [("wake", cold, AWX_OPERATOR), ("rollback", cold, AWX_OPERATOR)], actions
    assert_load_clean(results, since)
    # Back to where the retire tests below start: the refreshed color active, the other running.
    proc = playbook("playbooks/rollback.yml")
    assert proc.returncode == 0 and state()["active"] == active, proc.stdout[-3000:]


def test_retire_under_load_stops_only_the_previous_color(released):
    gen, since = load(max_seconds=300), time.time()
    time.sleep(2)
    try:
        proc = playbook("playbooks/retire.yml", {"retire_force": True})
    finally:
        results = gen.stop()
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert_load_clean(results, since)
    after = state()
    assert after["active"] == released["active"]
    assert running(qa(released["active"])) and not running(qa(released["previous"]))
    assert released["previous"] not in after["colors"], "the retired color must leave the gateway state"
    switch_line, stop_line = [json.loads(line) for line in (STATE_DIR / "audit.log").read_text().splitlines()[-2:]]
    assert switch_line["action"] == "retire" and switch_line["result"] == "ok", switch_line
    assert (stop_line["action"], stop_line["color"], stop_line["result"]) == ("retire_stop", released["previous"], "ok")
    assert qa(released["previous"]) in stop_line["detail"]["stopped"], stop_line


def kb_versions():
    """The knowledge base versions on the host: {directory name: manifest created_at}."""
    kb_dir = STATE_DIR / "kb" / "handbook"
    assert not [p.name for p in kb_dir.iterdir() if p.name.startswith(".removing-")], "a prune left a half-removed version"
    return {path.name: json.loads((path / "manifest.json").read_text())["created_at"]
            for path in kb_dir.iterdir()
            if path.is_dir() and not path.name.startswith(".") and (path / "manifest.json").is_file()}


def mounted_versions():
    """The versions the colors' qa-api containers mount (running or stopped)."""
    kb_dir = str(STATE_DIR / "kb" / "handbook") + "/"
    mounted = set()
    for color in ("blue", "green"):
        out = subprocess.run(["docker", "inspect", "--format", "{{json .Mounts}}", qa(color)],
                             capture_output=True, text=True, timeout=60, check=False)
        if out.returncode == 0:
            mounted |= {m["Source"][len(kb_dir):] for m in json.loads(out.stdout) if m["Source"].startswith(kb_dir)}
    return mounted


def test_after_n_plus_two_releases_only_the_kept_versions_remain_and_a_rollback_works(docs, released):
    """Retention with knowledge_base_keep_versions N = 1: after N+2 = 3 knowledge base releases (the
    refresh above, then two more) the newest version and the one the previous color keeps for a
    rollback remain, every older one is removed, and the rollback to the older of the two still
    serves under load."""
    keep = 1
    releases = [released["colors"][released["active"]]["kb_version"]]
    for revision in range(keep + 1):
        with open(docs / "vpn-howto.txt", "a", encoding="utf-8") as fh:
            fh.write("\nRetention test revision %d %s.\n" % (revision, uuid.uuid4().hex[:8]))
        proc = playbook("playbooks/kb_refresh.yml",
                        dict(RELEASE_ONLY, knowledge_base_src=str(docs), knowledge_base_keep_versions=keep))
        assert proc.returncode == 0, proc.stdout[-3000:]
        now = state()
        releases.append(now["colors"][now["active"]]["kb_version"])
    assert len(set(releases)) == keep + 2, releases
    newest, rollback_target = releases[-1], releases[-2]
    now = state()
    assert now["colors"][now["previous"]]["kb_version"] == rollback_target, now
    # Kept: the N newest plus what a color mounts; the first release and everything before it are gone.
    assert set(kb_versions()) == {newest, rollback_target}, (sorted(kb_versions()), releases)
    assert mounted_versions() == {newest, rollback_target}
    assert re.search(r"handbook: removed [^;]*%s" % releases[0], flat(proc.stdout)), proc.stdout[-3000:]

    gen, since = load(workers=2, max_seconds=300), time.time()
    time.sleep(2)
    try:
        proc = playbook("playbooks/rollback.yml")
    finally:
        results = gen.stop()
    assert proc.returncode == 0, proc.stdout[-3000:]
    after = state()
    assert after["active"] == now["previous"] and after["colors"][after["active"]]["kb_version"] == rollback_target, after
    assert (health(after["active"]).get("kb") or {}).get("version") == rollback_target, health(after["active"])
    assert_load_clean(results, since)
    # Forward again: the suites after this one start from the newest release.
    proc = playbook("playbooks/rollback.yml")
    assert proc.returncode == 0 and state()["colors"][state()["active"]]["kb_version"] == newest, proc.stdout[-3000:]
