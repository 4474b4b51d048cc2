"""What make bundle puts in the bundle: the Debian packages of every llmops host of the inventory
(their docker_host variables, the NVIDIA runtime where a host has a GPU) and python3-apt; every image of
images_tags; the archive's name from the collection version. Runs the bundle role's plan only."""
import json
import os
import pathlib
import subprocess

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = pathlib.Path(__file__).resolve().parent / "playbooks" / "bundle_plan.yml"
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
DEFAULT_PACKAGES = yaml.safe_load((ROOT / "roles/docker_host/defaults/main.yml").read_text())["docker_host_packages"]


def plan(tmp_path, hosts, extra):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"llmops": {"hosts": {
        name: dict(ansible_connection="local", **hostvars) for name, hostvars in hosts.items()}}}}}))
    result = tmp_path / "plan.json"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(inventory), str(PLAYBOOK),
                           "-e", json.dumps(dict(extra, result_file=str(result)))], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    return proc, (json.loads(result.read_text()) if result.exists() else None)


def test_the_bundle_carries_every_hosts_packages_and_every_image(tmp_path):
    tags = {"redis": "llmops/redis:0.1.0-1", "qa-api": "llmops/qa-api:0.1.0-2", "gateway": "llmops/gateway:0.1.0-3"}
    proc, result = plan(tmp_path, {"gpu-a": {"docker_host_nvidia": True},
                                   "cpu-b": {"docker_host_packages": ["docker.io", "htop"]}},
                        {"images_tags": tags, "bundle_output_dir": str(tmp_path / "out")})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert result["packages"] == sorted(set(DEFAULT_PACKAGES) | {"nvidia-container-toolkit", "htop", "python3-apt"})
    assert result["refs"] == sorted(tags.values())
    assert result["archive"] == str(tmp_path / "out" / ("llmops-bundle-%s.tar" % VERSION))
    # Staged beside the archive under a hidden name: never mistaken for a bundle.
    assert result["stage"] == str(tmp_path / "out" / (".llmops-bundle-%s.stage" % VERSION) / ("llmops-bundle-%s" % VERSION))
    assert result["apt_image"] == "llmops/base:bookworm"
    assert result["sources"] == ["deb http://deb.debian.org/debian bookworm main"]


def test_a_bad_bundle_name_is_refused(tmp_path):
    proc, result = plan(tmp_path, {"a": {}}, {"images_tags": {"x": "x:1"}, "bundle_name": "../evil"})
    assert proc.returncode != 0 and result is None
    assert "bundle_name must start with llmops-bundle-" in " ".join(proc.stdout.split()), proc.stdout[-2000:]
