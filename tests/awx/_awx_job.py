"""Run a playbook of this collection the way an AWX job runs it (shared by tests/awx and the
integration tests that release through it).

AWX gives ansible-runner a private data dir (inventory, env), the project checkout as project_dir,
the collections of collections/requirements.yml in <private>/requirements_collections at the head
of ANSIBLE_COLLECTIONS_PATHS, its extra vars (awx_user_name, awx_job_id, ...) and JOB_ID in the
environment. Here: a copy of the checkout's tracked files (no .venv, no .cache, no build), those
collections installed offline from this controller's copies, and a PATH whose ansible-playbook
is either the test's own or that of a virtualenv holding only what the execution environment
installs (ansible-core, ansible-runner and meta/ee-requirements.txt).
"""
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

import yaml

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


def install_collections(base, home):
    """What the project sync installs from collections/requirements.yml (here offline, from the
    copies this controller runs; community.docker brings its own dependency)."""
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
    return installed, names


def ee_requirements():
    """The pip requirements of the execution environment: its ansible-core and ansible-runner pins
    (root execution-environment.yml) and the collection's own (meta/ee-requirements.txt)."""
    deps = yaml.safe_load((ROOT / "execution-environment.yml").read_text())["dependencies"]
    own = [line.strip() for line in (ROOT / "meta/ee-requirements.txt").read_text().splitlines()
           if line.strip() and not line.startswith("#")]
    return [deps["ansible_core"]["package_pip"], deps["ansible_runner"]["package_pip"]] + own


def ee_venv():
    """A virtualenv with only the execution environment's Python packages, reused while they are
    the same (build/awx-ee-venv-<digest>); made with the host's pip configuration (mirror or PyPI)."""
    reqs = ee_requirements()
    path = ROOT / "build" / ("awx-ee-venv-" + hashlib.sha256("\n".join(reqs).encode()).hexdigest()[:12])
    if not (path / ".complete").exists():
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(path / "bin/pip"), "install", "--quiet"] + reqs, check=True, timeout=900)
        (path / ".complete").write_text("\n".join(reqs) + "\n")
    return path


def job_env(collections, home, bin_dir=BIN, job_id=True):
    """The environment of a job: the EE's PATH, AWX's collection path variables, JOB_ID."""
    paths = "%s:~/.ansible/collections:/usr/share/ansible/collections" % collections
    env = {
        "HOME": str(home),
        "PATH": "%s:/usr/local/bin:/usr/bin:/bin" % bin_dir,
        # AWX's list; it sets the old plural name, which ansible-core 2.19 reads as ..._PATH only.
        "ANSIBLE_COLLECTIONS_PATHS": paths,
        "ANSIBLE_COLLECTIONS_PATH": paths,
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    if job_id:
        env["JOB_ID"] = str(JOB)
    return env


def run_job(private, project, playbook, extravars, env, name):
    """ansible_runner.run as AWX calls it; returns (result, ok messages, stdout, failure messages)."""
    import ansible_runner  # pylint: disable=import-outside-toplevel

    # AWX finds the project's ansible.cfg in the job's working directory (the project); a variable
    # of the caller's (make exports one) must not point the job at another checkout.
    env = dict(env, ANSIBLE_CONFIG=str(pathlib.Path(project) / "ansible.cfg"))
    result = ansible_runner.run(private_data_dir=str(private), project_dir=str(project), playbook=playbook,
                                envvars=env, quiet=True,
                                extravars=dict(extravars, awx_user_name=USER, awx_job_id=JOB,
                                               awx_job_template_name="llmops " + name))
    events = list(result.events)
    messages = [str(event["event_data"]["res"].get("msg", "")) for event in events
                if event.get("event") in ("runner_on_ok", "runner_item_on_ok") and "res" in event.get("event_data", {})]
    failures = [str(event["event_data"]["res"].get("msg", "")) for event in events
                if event.get("event") == "runner_on_failed" and "res" in event.get("event_data", {})]
    return result, messages, result.stdout.read(), failures
