"""A release-only deploy (deploy_platform=false) stops before building anything when the platform
it relies on is not running, naming the containers and the fix.

Runs deploy.yml in check mode on the local inventory under a service name of its own, on the
real Docker engine. Docker's name filter matches substrings: a running `<service>-redis-exporter`
must not pass for `<service>-redis`.
"""
import json
import os
import pathlib
import subprocess
import sys
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = pathlib.Path(sys.executable).parent / "ansible-playbook"
IMAGE = os.environ.get("REDIS_IMAGE", "")


def docker(*args):
    return subprocess.run(["docker"] + list(args), capture_output=True, text=True, check=False)


@pytest.fixture
def service(tmp_path):
    if docker("version").returncode != 0 or not IMAGE or docker("image", "inspect", IMAGE).returncode != 0:
        if os.environ.get("LLMOPS_REQUIRE_DOCKER") == "1":
            pytest.fail("needs the docker engine and $REDIS_IMAGE (make host)")
        pytest.skip("needs the docker engine and $REDIS_IMAGE (make host)")
    name = "rog%s" % uuid.uuid4().hex[:6]
    yield name, tmp_path / "state"
    docker("rm", "-f", name + "-redis-exporter")


def release_only_check(name, state_dir):
    extra = {"deploy_platform": False, "llmops_service": name, "llmops_state_dir": str(state_dir)}
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run([str(PLAYBOOK), "-i", str(ROOT / "inventories/local/hosts.yml"), str(ROOT / "playbooks/deploy.yml"),
                           "--check", "-e", json.dumps(extra)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_release_only_refuses_a_missing_platform_by_exact_name(service):
    name, state_dir = service
    # Only a container whose name starts like the Redis one runs.
    started = docker("run", "-d", "--name", name + "-redis-exporter", "--network", "none", "--entrypoint", "sleep",
                     IMAGE, "120")
    assert started.returncode == 0, started.stderr
    proc = release_only_check(name, state_dir)
    assert proc.returncode != 0, proc.stdout[-3000:]
    out = proc.stdout
    assert "deploy_platform=false releases only, but %s-redis, %s-gateway-net, %s-gateway" % (name, name, name) in out, \
        out[-3000:]
    assert "run the full deploy" in out
    assert "%s-redis-exporter" % name not in out.split("releases only, but", 1)[1].split("is not running", 1)[0]
    # Nothing was built or written: the failure came before the images and the knowledge base.
    assert "Build the knowledge base" not in out and not state_dir.exists()
