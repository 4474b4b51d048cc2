"""Images shipped by archive (role images, images_distribution=archive), for real on this engine.

One engine plays both parts: the controller exports a throwaway tag of the small base image,
the tag is removed (the "host" lacks it), and the host part copies, loads and checks the ID.
A tag naming another image on the host is refused, naming host, tag and both IDs. Everything
created is named awx-ship-test:<random> and removed; the base image itself is never touched.
"""
import json
import os
import pathlib
import subprocess
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = pathlib.Path(__file__).resolve().parent / "playbooks" / "role_tasks.yml"
BASE = os.environ.get("LLMOPS_BASE_IMAGE", "llmops/base:bookworm")


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=120)


def image_id(ref):
    proc = docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def run_tasks(tasks, extra, tmp_path, inventory="localhost,"):
    result = tmp_path / ("%s-%s.json" % (tasks, uuid.uuid4().hex[:6]))
    extra = dict(extra, role_under_test="images", tasks_under_test=tasks, result_file=str(result),
                 result_vars=extra.get("result_vars", []))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", inventory, str(PLAYBOOK),
                           "-e", json.dumps(extra)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    return proc, (json.loads(result.read_text()) if result.exists() else None)


@pytest.fixture
def ship(tmp_path):
    """A throwaway tag of the base image, archive dirs in tmp_path; every awx-ship-test tag removed after."""
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0 or not image_id(BASE):
        if os.environ.get("LLMOPS_REQUIRE_DOCKER") == "1":
            pytest.fail("docker engine or %s missing (LLMOPS_REQUIRE_DOCKER=1)" % BASE)
        pytest.skip("docker engine or %s missing" % BASE)
    name = "awx-ship-test:%s" % uuid.uuid4().hex[:10]
    other = "awx-ship-test:other-%s" % uuid.uuid4().hex[:10]
    docker("tag", BASE, name)
    made = [name, other]
    # images_archive_copy: as on a remote host (the local connection would load from the controller's directory).
    vars_ = {"images_archive_dir": str(tmp_path / "controller"), "images_archive_host_dir": str(tmp_path / "host"),
             "images_build_timeout": 300, "images_archive_copy": True}
    yield {"ref": name, "other": other, "id": image_id(name), "vars": vars_, "tmp": tmp_path}
    for ref in made:
        # Untags only: the base image keeps its own tag, the other image is ours.
        docker("rmi", ref, check=False)


def test_shipped_by_archive_and_a_foreign_image_refused(ship):
    ref, base_id, tmp = ship["ref"], ship["id"], ship["tmp"]
    ids = {ref: base_id}
    # Controller: docker save once.
    proc, _result = run_tasks("export.yml", dict(ship["vars"], images_controller_ids=ids, images_export_refs=[ref]), tmp)
    assert proc.returncode == 0, proc.stdout[-3000:]
    archives = list((tmp / "controller").glob("awx-ship-test_*.tar"))
    assert [a.name for a in archives] == ["%s-%s.tar" % (ref.replace(":", "_"), base_id[7:19])]
    manifest = json.loads(subprocess.run(["tar", "-xOf", str(archives[0]), "manifest.json"], capture_output=True,
                                         check=True).stdout)
    assert manifest[0]["RepoTags"] == [ref]
    exported_at = archives[0].stat().st_mtime_ns

    # Host lacks the tag: copied, loaded, ID checked; the archive is reused and leaves the host.
    docker("rmi", ref)
    assert image_id(ref) is None
    proc, result = run_tasks("ship.yml", dict(ship["vars"], images_controller_ids=ids, images_ship_refs=[ref],
                                              result_vars=["images_to_load"]), tmp)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert result["images_to_load"] == [ref]
    assert image_id(ref) == base_id
    assert archives[0].stat().st_mtime_ns == exported_at, "exported again although the archive was there"
    assert not list((tmp / "host").glob("*.tar")), "the copied archive stays on the host"

    # The whole archive mode with the tag present and equal: nothing to load, the check passes.
    proc, result = run_tasks("archive.yml", dict(ship["vars"], images_archive_refs=[ref],
                                                 result_vars=["images_to_load", "images_controller_ids"]), tmp)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert result == {"images_to_load": [], "images_controller_ids": {ref: base_id}}

    # Another image under the same tag on the "host" (a label-only build of the base, no network).
    subprocess.run(["docker", "build", "--pull=false", "-q", "-t", ship["other"], "-"], check=True, text=True,
                   input="FROM %s\nLABEL awx.ship-test=other\n" % BASE, capture_output=True, timeout=120)
    other_id = image_id(ship["other"])
    docker("tag", ship["other"], ref)
    assert other_id and other_id != base_id
    proc, _result = run_tasks("ship.yml", dict(ship["vars"], images_controller_ids=ids, images_ship_refs=[ref]), tmp)
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    assert "localhost: tag %s is image %s here but %s on the controller" % (ref, other_id, base_id) in out, out[-3000:]
    assert image_id(ref) == other_id, "a refused host is left as it was"

    # Told to replace: the controller's image is loaded over it.
    proc, _result = run_tasks("ship.yml", dict(ship["vars"], images_controller_ids=ids, images_ship_refs=[ref],
                                               images_archive_replace=True), tmp)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert image_id(ref) == base_id


def test_archive_mode_refuses_images_the_controller_lacks(ship):
    missing = "awx-ship-test:absent-%s" % uuid.uuid4().hex[:8]
    proc, _result = run_tasks("archive.yml", dict(ship["vars"], images_archive_refs=[missing]), ship["tmp"])
    assert proc.returncode != 0
    assert "%s not found on the controller's Docker engine" % missing in " ".join(proc.stdout.split())


def test_shipped_to_one_host_of_a_play_whose_other_hosts_skip_the_role(ship):
    """kb_refresh.yml runs the role on the gateway host only: the others never set images_to_load."""
    ref, base_id, tmp = ship["ref"], ship["id"], ship["tmp"]
    ids = {ref: base_id}
    # One engine is both sides: the controller saves first, then the "host" loses the tag.
    proc, _result = run_tasks("export.yml", dict(ship["vars"], images_controller_ids=ids, images_export_refs=[ref]), tmp)
    assert proc.returncode == 0, proc.stdout[-3000:]
    docker("rmi", ref)
    extra = dict(ship["vars"], images_controller_ids=ids, images_ship_refs=[ref],
                 result_vars=["images_to_load"], role_play_hosts="localhost,bystander")
    proc, result = run_tasks("ship.yml", extra, tmp, inventory="localhost,bystander,")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert result["images_to_load"] == [ref]
    assert image_id(ref) == base_id


def test_each_host_is_shipped_only_the_images_it_runs(ship):
    """images_ship_names (set per host by the playbooks): the controller checks every image, the host gets its own."""
    ref, base_id, tmp = ship["ref"], ship["id"], ship["tmp"]
    docker("tag", BASE, ship["other"])
    tags = {"gateway": ship["other"], "qa-api": ref}
    extra = dict(ship["vars"], images_tags=tags, images_ship_names=["qa-api"],
                 result_vars=["images_ship_refs", "images_controller_refs", "images_controller_ids"])
    proc, result = run_tasks("archive.yml", extra, tmp)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert result["images_ship_refs"] == [ref]
    assert result["images_controller_refs"] == sorted(tags.values())
    assert result["images_controller_ids"] == {ref: base_id, ship["other"]: base_id}
    # A name the role does not build is refused, naming the host, the name and the fix.
    proc, _result = run_tasks("archive.yml", dict(extra, images_ship_names=["qa-api", "vllm"]), tmp)
    assert proc.returncode != 0
    said = " ".join(proc.stdout.split())
    assert "localhost: images_ship_names names vllm, which the role does not build here" in said, said[-3000:]
