"""docker_host on a GPU host: the NVIDIA container toolkit from the operator's .deb files.

No GPU and no NVIDIA package here: the .deb files are DOUBLES built by the test with dpkg-deb
(package nvidia-container-toolkit, version 0.0.0~double, whose runtime and hook are shell
scripts), installed by the role's real tasks (roles/docker_host/tasks/nvidia.yml, ansible.builtin.apt)
into a Debian container of the llama.cpp image the repo builds ($LLM_IMAGE), reached with the
community.docker.docker connection. What the toolkit does with a GPU is not tested here.
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import uuid

import pytest

from test_gpu_placement import PLAYBOOKS, ROOT, one_line

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "doubles"))
from deb_double import fake_deb  # noqa: E402

LLM_IMAGE = os.environ.get("LLM_IMAGE", "llmops/llm-llamacpp:dev")


def docker(*args, check=True):
    proc = subprocess.run(["docker"] + list(args), capture_output=True, text=True, timeout=120, check=False)
    assert not check or proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def host():
    """A Debian container standing in for a GPU host (root, python3-apt, no NVIDIA package at first).

    One for the module (python3-apt comes from the mirror): the refusal test runs first, before the
    toolkit double is installed."""
    if subprocess.run(["docker", "image", "inspect", LLM_IMAGE], capture_output=True, check=False).returncode != 0:
        if os.environ.get("LLMOPS_REQUIRE_DOCKER") == "1":
            pytest.fail("image %s not present (make host; LLM_IMAGE from .cache/images.env)" % LLM_IMAGE)
        pytest.skip("image %s not present (make host; LLM_IMAGE from .cache/images.env)" % LLM_IMAGE)
    name = "%s-gpuhost-%s" % (os.environ.get("LLMOPS_TEST_PREFIX", "h4-ut"), uuid.uuid4().hex[:6])
    docker("run", "-d", "--name", name, "--user", "root", "--entrypoint", "sleep", LLM_IMAGE, "infinity")
    try:
        # ansible.builtin.apt needs python3-apt on the host (a real host has it: docker_host installs with apt);
        # from the Debian mirror, as every image build here.
        setup = docker("exec", name, "sh", "-c",
                       "apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-apt", check=False)
        assert setup.returncode == 0, "python3-apt in %s: %s" % (name, setup.stderr[-2000:])
        yield name
    finally:
        docker("rm", "-f", name, check=False)


def run_nvidia_tasks(host_name, debs):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    extra = {"role_under_test": "docker_host", "tasks_under_test": "nvidia.yml",
             "ansible_connection": "community.docker.docker", "ansible_host": host_name,
             "ansible_python_interpreter": "/usr/bin/python3",
             "docker_host_nvidia": True, "docker_host_nvidia_debs": debs}
    return subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", "localhost,", str(PLAYBOOKS / "role_tasks.yml"),
                           "-e", json.dumps(extra)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def test_a_gpu_host_without_the_runtime_is_refused_naming_the_fix_with_a_deb_double(tmp_path, host):
    # The base package alone: it installs, but brings neither the runtime nor its hook.
    deb = fake_deb(tmp_path, "nvidia-container-toolkit-base", "0.0.0~double", ["nvidia-ctk"])
    proc = run_nvidia_tasks(host, [deb])
    out = one_line(proc.stdout)
    assert proc.returncode != 0
    assert "has no nvidia-container-runtime and nvidia-container-runtime-hook on its PATH" in out, out[-3000:]
    assert "nvidia-container-toolkit-base_0.0.0~double_all.deb" in out and "docker_host_nvidia_debs" in out


def test_the_operators_nvidia_debs_are_installed_and_the_runtime_checked_with_deb_doubles(tmp_path, host):
    deb = fake_deb(tmp_path, "nvidia-container-toolkit", "0.0.0~double",
                   ["nvidia-container-runtime", "nvidia-container-runtime-hook"])
    proc = run_nvidia_tasks(host, [deb])
    assert proc.returncode == 0, proc.stdout[-3000:]
    version = docker("exec", host, "dpkg-query", "-W", "-f", "${Version}", "nvidia-container-toolkit").stdout
    assert version == "0.0.0~double"
    assert docker("exec", host, "nvidia-container-runtime-hook").stdout.strip() == "nvidia-container-runtime-hook double"
    # Again: nothing to copy or install.
    again = run_nvidia_tasks(host, [deb])
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]


def test_operator_debs_replace_the_packages_by_name():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))

    def package_list(tmp, **settings):
        result = tmp / "facts.json"
        extra = dict({"role_under_test": "docker_host", "tasks_under_test": "packages.yml",
                      "result_vars": ["docker_host_package_list"], "result_file": str(result)}, **settings)
        proc = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", "localhost,",
                               str(PLAYBOOKS / "role_tasks.yml"), "-e", json.dumps(extra)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout[-2000:]
        return json.loads(result.read_text())["docker_host_package_list"]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        assert "nvidia-container-toolkit" in package_list(tmp, docker_host_nvidia=True)
        assert "nvidia-container-toolkit" not in package_list(
            tmp, docker_host_nvidia=True, docker_host_nvidia_debs=["/srv/nvidia/nvidia-container-toolkit_1.17.8-1_amd64.deb"])
        assert "nvidia-container-toolkit" not in package_list(tmp)
