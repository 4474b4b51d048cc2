"""Playbooks of the collection run through ansible-runner the way an AWX job runs them.

AWX gives ansible-runner a private data dir (inventory, env), the project checkout as
project_dir, the collections of collections/requirements.yml in <private>/requirements_collections
at the head of ANSIBLE_COLLECTIONS_PATHS, its extra vars (awx_user_name, awx_job_id, ...) and
JOB_ID in the environment. Here: a copy of the checkout's tracked files (no .venv, no .cache, no
build), those collections installed offline from this controller's copies, a PATH without the
checkout's .venv, HOME in a temporary directory, and no collections from the Python path.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

ansible_runner = pytest.importorskip("ansible_runner")

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
USER, JOB = "alice", 4242


def copy_tracked(dest):
    """The project checkout AWX would clone: tracked files (links kept as links), working-tree content."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src, dst = ROOT / rel, dest / rel
        if not os.path.lexists(src):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


@pytest.fixture(scope="module")
def awx(tmp_path_factory):
    base = tmp_path_factory.mktemp("awx")
    project = base / "project"
    copy_tracked(project)
    assert not (project / ".venv").exists() and not (project / ".cache").exists()
    home = base / "home"
    home.mkdir()
    # What the project sync installs from collections/requirements.yml (here offline, from the
    # copies this controller runs; community.docker brings its own dependency).
    names = [c["name"] for c in yaml.safe_load((ROOT / "collections/requirements.yml").read_text())["collections"]]
    names.append("community.library_inventory_filtering_v1")
    roots = [pathlib.Path(p) for p in __import__("ansible_collections").__path__]
    dirs = [next(r.joinpath(*name.split(".")) for r in roots if r.joinpath(*name.split("."), "MANIFEST.json").exists())
            for name in names]
    reqs = base / "requirements.yml"
    reqs.write_text(yaml.safe_dump({"collections": [{"name": str(d), "type": "dir"} for d in dirs]}))
    installed = base / "requirements_collections"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--force", "-p",
                    str(installed), "-r", str(reqs)], check=True, capture_output=True, env=dict(os.environ, HOME=str(home)))
    assert sorted(p.name for p in installed.glob("ansible_collections/*/*")) == sorted(n.split(".")[1] for n in names)
    return {"base": base, "project": project, "home": home, "collections": installed}


def run(awx, name, playbook, extravars, job_env=True):
    private = awx["base"] / name
    (private / "inventory").mkdir(parents=True)
    (private / "inventory" / "hosts").write_text(
        "[llmops_gateway]\nlocalhost ansible_connection=local ansible_python_interpreter=%s\n"
        "[llmops]\nlocalhost\n" % sys.executable)
    paths = "%s:~/.ansible/collections:/usr/share/ansible/collections" % awx["collections"]
    env = {
        "HOME": str(awx["home"]),
        # The Python running the tests stands for the EE's: its ansible-playbook, nothing of the checkout.
        "PATH": "%s:/usr/local/bin:/usr/bin:/bin" % BIN,
        # AWX's list; it sets the old plural name, which ansible-core 2.19 reads as ..._PATH only.
        "ANSIBLE_COLLECTIONS_PATHS": paths,
        "ANSIBLE_COLLECTIONS_PATH": paths,
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
        "ANSIBLE_NOCOLOR": "1",
    }
    if job_env:
        env["JOB_ID"] = str(JOB)
    result = ansible_runner.run(private_data_dir=str(private), project_dir=str(awx["project"]), playbook=playbook,
                                envvars=env, quiet=True,
                                extravars=dict(extravars, awx_user_name=USER, awx_job_id=JOB,
                                               awx_job_template_name="llmops " + name))
    messages = [str(event["event_data"]["res"].get("msg", "")) for event in result.events
                if event.get("event") in ("runner_on_ok", "runner_item_on_ok") and "res" in event.get("event_data", {})]
    stdout = result.stdout.read()
    return result, messages, stdout


def test_status_of_a_service_never_deployed(awx, tmp_path):
    result, messages, stdout = run(awx, "status", "playbooks/status.yml", {"llmops_state_dir": str(tmp_path)})
    assert (result.status, result.rc) == ("successful", 0), stdout[-3000:]
    assert "service qa: never deployed (no state.json)" in " ".join(messages), messages
    assert "lock: free" in " ".join(messages), messages


def test_audit_names_the_awx_user_and_job(awx, tmp_path):
    sys.path.insert(0, str(ROOT / "collections"))
    from ansible_collections.llmops.bluegreen.plugins.module_utils import _lock  # pylint: disable=import-outside-toplevel
    (tmp_path / "qa").mkdir()
    # A lock left by a run that died: unlock.yml removes it and audits who did.
    _lock.acquire(str(tmp_path / "qa" / "lock"), "qa", "deploy", pid_of=None)
    result, _messages, stdout = run(awx, "unlock", "playbooks/unlock.yml", {"llmops_state_dir": str(tmp_path)})
    assert (result.status, result.rc) == ("successful", 0), stdout[-3000:]
    records = [json.loads(line) for line in (tmp_path / "qa" / "audit.log").read_text().splitlines()]
    assert [(r["action"], r["operator"]) for r in records] == [("unlock", "%s (AWX job %d)" % (USER, JOB))]

    # status.yml shows that record; the same variables from -e outside an AWX job are shown as such.
    result, messages, stdout = run(awx, "status-e", "playbooks/status.yml", {"llmops_state_dir": str(tmp_path)},
                                   job_env=False)
    assert (result.status, result.rc) == ("successful", 0), stdout[-3000:]
    assert any("unlock" in m and "by %s (AWX job %d)" % (USER, JOB) in m for m in messages), messages
    _lock.acquire(str(tmp_path / "qa" / "lock"), "qa", "deploy", pid_of=None)
    result, _messages, stdout = run(awx, "unlock-e", "playbooks/unlock.yml", {"llmops_state_dir": str(tmp_path)},
                                    job_env=False)
    assert result.rc == 0, stdout[-3000:]
    last = json.loads((tmp_path / "qa" / "audit.log").read_text().splitlines()[-1])
    assert last["operator"].startswith("%s (-e awx_user_name awx_job_id=%d, not an AWX job; login " % (USER, JOB))


def test_rollback_of_a_service_never_deployed_is_refused_clearly(awx, tmp_path):
    result, _messages, stdout = run(awx, "rollback", "playbooks/rollback.yml", {"llmops_state_dir": str(tmp_path)})
    assert (result.status, result.rc) == ("failed", 2), stdout[-3000:]
    failures = [event["event_data"]["res"]["msg"] for event in result.events if event.get("event") == "runner_on_failed"]
    assert len(failures) == 1 and failures[0].startswith(
        "Nothing to roll back to for service qa: it was never deployed (no %s/qa/state.json)" % tmp_path), failures
    assert not (tmp_path / "qa" / "lock").exists(), "the lock outlived the refused rollback"
