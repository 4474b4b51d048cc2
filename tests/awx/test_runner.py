"""Playbooks of the collection run through ansible-runner the way an AWX job runs them
(tests/awx/_awx_job.py: the project copy, the collections, the job's environment)."""
import json
import sys

import pytest

pytest.importorskip("ansible_runner")
from _awx_job import JOB, ROOT, USER, copy_tracked, install_collections, job_env, run_job  # noqa: E402


@pytest.fixture(scope="module")
def awx(tmp_path_factory):
    base = tmp_path_factory.mktemp("awx")
    project = base / "project"
    copy_tracked(project)
    assert not (project / ".venv").exists() and not (project / ".cache").exists()
    home = base / "home"
    home.mkdir()
    installed, names = install_collections(base, home)
    assert sorted(p.name for p in installed.glob("ansible_collections/*/*")) == sorted(n.split(".")[1] for n in names)
    return {"base": base, "project": project, "home": home, "collections": installed}


def run(awx, name, playbook, extravars, job_env_set=True):
    private = awx["base"] / name
    (private / "inventory").mkdir(parents=True)
    (private / "inventory" / "hosts").write_text(
        "[llmops_gateway]\nlocalhost ansible_connection=local ansible_python_interpreter=%s\n"
        "[llmops]\nlocalhost\n" % sys.executable)
    # The Python running the tests stands for the EE's: its ansible-playbook, nothing of the checkout.
    env = job_env(awx["collections"], awx["home"], job_id=job_env_set)
    return run_job(private, awx["project"], playbook, extravars, env, name)


def test_status_of_a_service_never_deployed(awx, tmp_path):
    result, messages, stdout, _failures = run(awx, "status", "playbooks/status.yml", {"llmops_state_dir": str(tmp_path)})
    assert (result.status, result.rc) == ("successful", 0), stdout[-3000:]
    assert "service qa: never deployed (no state.json)" in " ".join(messages), messages
    assert "lock: free" in " ".join(messages), messages


def test_audit_names_the_awx_user_and_job(awx, tmp_path):
    sys.path.insert(0, str(ROOT / "collections"))
    from ansible_collections.llmops.bluegreen.plugins.module_utils import _lock  # pylint: disable=import-outside-toplevel
    (tmp_path / "qa").mkdir()
    # A lock left by a run that died: unlock.yml removes it and audits who did.
    _lock.acquire(str(tmp_path / "qa" / "lock"), "qa", "deploy", pid_of=None)
    result, _messages, stdout, _failures = run(awx, "unlock", "playbooks/unlock.yml", {"llmops_state_dir": str(tmp_path)})
    assert (result.status, result.rc) == ("successful", 0), stdout[-3000:]
    records = [json.loads(line) for line in (tmp_path / "qa" / "audit.log").read_text().splitlines()]
    assert [(r["action"], r["operator"]) for r in records] == [("unlock", "%s (AWX job %d)" % (USER, JOB))]

    # status.yml shows that record; the same variables from -e outside an AWX job are shown as such.
    result, messages, stdout, _failures = run(awx, "status-e", "playbooks/status.yml",
                                              {"llmops_state_dir": str(tmp_path)}, job_env_set=False)
    assert (result.status, result.rc) == ("successful", 0), stdout[-3000:]
    assert any("unlock" in m and "by %s (AWX job %d)" % (USER, JOB) in m for m in messages), messages
    _lock.acquire(str(tmp_path / "qa" / "lock"), "qa", "deploy", pid_of=None)
    result, _messages, stdout, _failures = run(awx, "unlock-e", "playbooks/unlock.yml",
                                               {"llmops_state_dir": str(tmp_path)}, job_env_set=False)
    assert result.rc == 0, stdout[-3000:]
    last = json.loads((tmp_path / "qa" / "audit.log").read_text().splitlines()[-1])
    assert last["operator"].startswith("%s (-e awx_user_name awx_job_id=%d, not an AWX job; login " % (USER, JOB))


def test_rollback_of_a_service_never_deployed_is_refused_clearly(awx, tmp_path):
    result, _messages, stdout, failures = run(awx, "rollback", "playbooks/rollback.yml", {"llmops_state_dir": str(tmp_path)})
    assert (result.status, result.rc) == ("failed", 2), stdout[-3000:]
    assert len(failures) == 1 and failures[0].startswith(
        "Nothing to roll back to for service qa: it was never deployed (no %s/qa/state.json)" % tmp_path), failures
    assert not (tmp_path / "qa" / "lock").exists(), "the lock outlived the refused rollback"
