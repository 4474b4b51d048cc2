"""`ansible-playbook deploy.yml` works in a fresh clone: no install step resolves the collection.

A `git clone` of this checkout (committed files only: no .cache, no .venv, no collection
link made by make) must parse deploy.yml and resolve every llmops.bluegreen module, role
and filter through the committed link collections/ansible_collections/llmops/bluegreen.
Molecule scenario `default` converges with the same deploy.yml for real.
"""
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = pathlib.Path(sys.executable).parent / "ansible-playbook"


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    dest = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    # The working tree's committed state, as a clone of the current commit sees it.
    subprocess.run(["git", "-C", str(dest), "checkout", "-q", subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()],
        check=True)
    assert not (dest / ".cache").exists() and (dest / "collections/ansible_collections/llmops/bluegreen").is_symlink()
    return dest


def run(clone, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(clone / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    return subprocess.run([str(PLAYBOOK)] + list(args), cwd=clone, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_root_deploy_parses_and_resolves_the_collection_in_a_clone(clone):
    proc = run(clone, "deploy.yml", "--list-tasks")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for task in ("Take the release lock for the whole play", "Release", "Ask with the openai SDK, streaming and not"):
        assert task in proc.stdout, proc.stdout


def test_root_deploy_check_mode_finds_the_roles_and_filters(clone):
    # --syntax-check loads every static import; an unresolvable collection fails here.
    proc = run(clone, "deploy.yml", "--syntax-check")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    listed = run(clone, "playbooks/retire.yml", "--list-tasks")
    assert listed.returncode == 0 and "Take the service lock" in listed.stdout, listed.stdout + listed.stderr
