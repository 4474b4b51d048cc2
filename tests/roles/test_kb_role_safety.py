"""The knowledge_base role never publishes what a symlink points to, refuses oversize files, and
mirrors the documents exactly as one archive.

Real ansible-playbook runs on localhost. A symlink in the documents directory fails the role in
check mode and for real, naming the link and its target, before anything is copied; after a good
build, nothing of the target is anywhere under the state directory (documents mirror, KB versions,
embedding cache). The docker test needs $LLMOPS_QA_API_IMAGE (the qa-api image of this checkout).
"""
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = pathlib.Path(__file__).resolve().parent / "playbooks" / "role.yml"
IMAGE = os.environ.get("LLMOPS_QA_API_IMAGE", "llmops/qa-api:dev")
SECRET = "kbsafe-TOP-SECRET-7f3a9c"


def run_kb_role(extra, check=False):
    extra = dict(extra, role_under_test="knowledge_base")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    cmd = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", "localhost,", str(PLAYBOOK), "-e", json.dumps(extra)]
    proc = subprocess.run(cmd + (["--check"] if check else []), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    return proc.returncode, " ".join(proc.stdout.split())  # the callback wraps long messages


def grep_tree(root, needle):
    """Files below root whose bytes contain needle (symlinks not followed)."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path) and needle.encode() in pathlib.Path(path).read_bytes():
                found.append(path)
    return found


@pytest.fixture
def layout(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nAnnual leave is 25 days per year.\n")
    secret = tmp_path / "ssh" / "id_ed25519"
    secret.parent.mkdir()
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n" % SECRET)
    state = tmp_path / "state"
    return {"docs": docs, "secret": secret, "state": state,
            "vars": {"knowledge_base_src": str(docs), "knowledge_base_state_dir": str(state),
                     "knowledge_base_builder_image": IMAGE, "knowledge_base_name": "kbsafe",
                     "knowledge_base_controller_archive": str(tmp_path / "controller" / "docs.tar.gz")}}


def assert_refused(code, out, link, target):
    assert code != 0
    assert "symlink %s -> %s" % (link, target) in out, out[-3000:]
    assert "Pack the documents" not in out  # failed before the mirror step


def test_symlink_fails_check_mode_and_real_run_naming_link_and_target(layout):
    link = layout["docs"] / "notes.txt"
    os.symlink(layout["secret"], link)
    for check in (True, False):
        code, out = run_kb_role(layout["vars"], check=check)
        assert_refused(code, out, link, layout["secret"])
    assert not layout["state"].exists() or not grep_tree(layout["state"], SECRET)


def test_symlinked_directory_is_refused(layout):
    os.symlink(layout["secret"].parent, layout["docs"] / "keys")
    code, out = run_kb_role(layout["vars"], check=True)
    assert_refused(code, out, layout["docs"] / "keys", layout["secret"].parent)


def test_per_file_cap_refuses_a_big_plain_file_naming_it(layout):
    big = layout["docs"] / "dump.txt"
    big.write_text("y" * 5000)
    code, out = run_kb_role(dict(layout["vars"], knowledge_base_max_file_bytes=4096))
    assert code != 0
    assert "over knowledge_base_max_file_bytes=4096: %s (5000 bytes)" % big in out, out[-3000:]
    assert not (layout["state"] / "docs").exists()


def need_image():
    """Skip without the docker engine or the image, unless the suite requires them (make test does)."""
    proc = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        reason = "docker or image %s not available: %s" % (IMAGE, proc.stderr.strip()[-300:])
        if os.environ.get("LLMOPS_REQUIRE_DOCKER") == "1":
            pytest.fail(reason + " (LLMOPS_REQUIRE_DOCKER=1)")
        pytest.skip(reason)


def test_after_a_good_build_a_symlink_changes_nothing_and_leaks_nothing(layout):
    need_image()
    code, out = run_kb_role(layout["vars"])
    assert code == 0, out[-3000:]
    kb = layout["state"] / "kb" / "kbsafe"
    versions = sorted(p.name for p in kb.iterdir() if not p.name.startswith("."))
    assert len(versions) == 1
    before = {p: p.read_bytes() for p in (kb / versions[0]).iterdir()}

    link = layout["docs"] / "notes.txt"
    os.symlink(layout["secret"], link)
    for check in (True, False):
        code, out = run_kb_role(layout["vars"], check=check)
        assert_refused(code, out, link, layout["secret"])
    assert sorted(p.name for p in kb.iterdir() if not p.name.startswith(".")) == versions
    assert {p: p.read_bytes() for p in (kb / versions[0]).iterdir()} == before
    assert not (layout["state"] / "docs" / "kbsafe" / "notes.txt").exists()
    assert grep_tree(layout["state"], SECRET) == []
    assert grep_tree(layout["state"], "25 days")  # the search does find what is there


def changed_count(out):
    found = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", out)
    assert found, out[-2000:]
    return int(found.group(1))


def tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_documents_go_as_one_archive_a_fresh_checkout_changes_nothing_and_edits_are_mirrored(layout, tmp_path):
    need_image()
    docs, mirror = layout["docs"], layout["state"] / "docs" / "kbsafe"
    (docs / "policies").mkdir()
    (docs / "policies" / "old.md").write_text("# Old\n\nRetired policy.\n")
    code, out = run_kb_role(layout["vars"])
    assert code == 0, out[-3000:]
    assert tree(mirror) == tree(docs)
    version = re.search(r"kbsafe ([0-9a-f]{12}) \(", out)
    assert version, out[-3000:]
    # The same documents from a fresh checkout (another directory, new file times): nothing changes.
    checkout = tmp_path / "checkout"
    shutil.copytree(docs, checkout, copy_function=shutil.copy)
    code, out = run_kb_role(dict(layout["vars"], knowledge_base_src=str(checkout)))
    assert code == 0 and changed_count(out) == 0, out[-3000:]
    # An edit, a removal and a new Chinese document: the host mirrors them exactly, a new version.
    (checkout / "leave.md").write_text("# Leave\n\nAnnual leave is 26 days per year.\n")
    (checkout / "policies" / "old.md").unlink()
    (checkout / "policies" / "报销.md").write_text("# 报销\n\n发票须在三十天内提交。\n", encoding="utf-8")
    code, out = run_kb_role(dict(layout["vars"], knowledge_base_src=str(checkout)))
    assert code == 0 and changed_count(out) > 0, out[-3000:]
    assert tree(mirror) == tree(checkout)
    new = re.search(r"kbsafe ([0-9a-f]{12}) \(", out)
    assert new and new.group(1) != version.group(1), out[-3000:]
