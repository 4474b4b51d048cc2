"""The deploy side of the air-gap bundle, for real on this engine: the images role ships a bundle's
archive (no controller image, no build) and checks the ID; a tampered archive is refused before anything
is loaded; an image or a Debian package the bundle lacks is named. Everything created is tagged
bundle-ship-test:<random> and removed; the base image itself is never touched.
"""
import importlib.util
import json
import os
import pathlib
import subprocess
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = pathlib.Path(__file__).resolve().parent / "playbooks" / "role_tasks.yml"
BASE = os.environ.get("LLMOPS_BASE_IMAGE", "llmops/base:bookworm")
_spec = importlib.util.spec_from_file_location("_bundle_utils", ROOT / "plugins" / "module_utils" / "_bundle.py")
bundle_utils = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bundle_utils)


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=180)


def image_id(ref):
    proc = docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def run_tasks(role, tasks, extra, tmp_path):
    result = tmp_path / ("%s-%s.json" % (tasks, uuid.uuid4().hex[:6]))
    extra = dict(extra, role_under_test=role, tasks_under_test=tasks, result_file=str(result),
                 result_vars=extra.get("result_vars", []))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", "localhost,", str(PLAYBOOK),
                           "-e", json.dumps(extra)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    return proc, (json.loads(result.read_text()) if result.exists() else None)


def seal(root):
    (root / "SHA256SUMS").write_text(bundle_utils.format_sums(bundle_utils.compute_sums(str(root))))


@pytest.fixture
def bundle(tmp_path):
    """An unpacked bundle holding the archive of a throwaway tag of the base image; the tag is then removed."""
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0 or not image_id(BASE):
        if os.environ.get("LLMOPS_REQUIRE_DOCKER") == "1":
            pytest.fail("docker engine or %s missing (LLMOPS_REQUIRE_DOCKER=1)" % BASE)
        pytest.skip("docker engine or %s missing" % BASE)
    ref = "bundle-ship-test:%s" % uuid.uuid4().hex[:10]
    docker("tag", BASE, ref)
    base_id = image_id(ref)
    root = tmp_path / "llmops-bundle-0.1.0"
    for part in ("images", "debs", "wheels/controller", "collection"):
        (root / part).mkdir(parents=True)
    archive = "images/%s-%s.tar" % (ref.replace(":", "_"), base_id[7:19])
    docker("save", "-o", str(root / archive), ref)
    docker("rmi", ref)
    for rel in ("debs/Packages", "wheels/controller/a.whl", "collection/c.tar.gz"):
        (root / rel).write_text(rel)
    (root / "bundle.json").write_text(json.dumps({
        "format": 1, "name": root.name, "version": "0.1.0", "commit": "feedbee",
        "images": {"test": {"ref": ref, "id": base_id, "archive": archive}},
        "debs": {"dir": "debs", "packages": ["coreutils"]}, "wheels": {"controller": {"dir": "wheels/controller"}},
        "collection": {"file": "collection/c.tar.gz"}}))
    seal(root)
    yield {"root": root, "ref": ref, "id": base_id, "archive": root / archive, "tmp": tmp_path,
           "vars": {"images_bundle_dir": str(root), "images_archive_refs": [ref],
                    "images_archive_host_dir": str(tmp_path / "host")}}
    docker("rmi", ref, check=False)


def test_a_bundle_archive_is_shipped_with_its_id_and_a_tampered_one_refused(bundle):
    ref, tmp = bundle["ref"], bundle["tmp"]
    assert image_id(ref) is None
    # A byte appended to the archive: refused before anything is copied or loaded.
    original = bundle["archive"].read_bytes()
    bundle["archive"].write_bytes(original + b"\0")
    proc, _result = run_tasks("images", "archive.yml", bundle["vars"], tmp)
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0
    assert "images/%s: content differs" % bundle["archive"].name in out, out[-3000:]
    assert image_id(ref) is None and not list((tmp / "host").glob("*.tar"))

    bundle["archive"].write_bytes(original)
    # As on a remote host: copied to the host's directory (kept here, to see it), loaded from there.
    proc, result = run_tasks("images", "archive.yml", dict(bundle["vars"], result_vars=["images_to_load"],
                                                           images_archive_copy=True, images_archive_keep=True), tmp)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert result["images_to_load"] == [ref]
    assert image_id(ref) == bundle["id"]
    assert [p.name for p in (tmp / "host").glob("*.tar")] == [bundle["archive"].name]

    # The local connection (the controller is the host): loaded from the bundle itself, nothing copied.
    docker("rmi", ref)
    (tmp / "host" / bundle["archive"].name).unlink()
    proc, result = run_tasks("images", "archive.yml", dict(bundle["vars"], result_vars=["images_to_load"]), tmp)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert result["images_to_load"] == [ref] and image_id(ref) == bundle["id"]
    assert not list((tmp / "host").glob("*.tar"))

    # Loaded already: nothing to load, the ID check passes again.
    proc, result = run_tasks("images", "archive.yml", dict(bundle["vars"], result_vars=["images_to_load"]), tmp)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert result["images_to_load"] == []


def test_an_image_the_bundle_lacks_is_named_with_the_bundles_commit(bundle):
    missing = "llmops/qa-api:0.1.0-000000000000"
    proc, _result = run_tasks("images", "archive.yml", dict(bundle["vars"], images_archive_refs=[missing]),
                              bundle["tmp"])
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0
    assert "has no image %s" % missing in out and "made from commit feedbee" in out, out[-3000:]


def test_a_bundle_with_distribution_build_is_refused(bundle):
    proc, _result = run_tasks("images", "main.yml", dict(bundle["vars"], images_distribution="build"), bundle["tmp"])
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0 and "remove that setting (or set it to archive)" in out, out[-3000:]


def test_docker_host_names_a_package_the_bundle_lacks_before_installing_anything(bundle):
    # coreutils is installed here: nothing missing, the bundle is not even read.
    proc, _result = run_tasks("docker_host", "bundle_packages.yml",
                              {"docker_host_bundle_dir": "/nonexistent", "docker_host_package_list": ["coreutils"],
                               "docker_host_bundle_apt_dir": str(bundle["tmp"] / "apt")}, bundle["tmp"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    absent = "llmops-no-such-package-%s" % uuid.uuid4().hex[:6]
    proc, _result = run_tasks("docker_host", "bundle_packages.yml",
                              {"docker_host_bundle_dir": str(bundle["root"]),
                               "docker_host_package_list": ["coreutils", absent],
                               "docker_host_bundle_apt_dir": str(bundle["tmp"] / "apt")}, bundle["tmp"])
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0 and "has no Debian package %s" % absent in out, out[-3000:]
    assert not (bundle["tmp"] / "apt").exists(), "nothing is prepared for apt when the bundle lacks a package"
