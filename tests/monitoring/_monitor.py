"""What the monitoring tests share: the prometheus image, docker, ansible from the checkout."""
import json
import os
import pathlib
import socket
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
IMAGES_ENV = ROOT / ".cache" / "images.env"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def skip_or_fail(reason):
    """Skip when docker or an image is missing, unless the suite requires them (make test does)."""
    if os.environ.get("LLMOPS_REQUIRE_DOCKER") == "1":
        pytest.fail(reason + " (LLMOPS_REQUIRE_DOCKER=1: the docker tests must run)")
    pytest.skip(reason)


def docker(*args, check=True, timeout=120):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


def image(variable, repository):
    """The tag from the environment or .cache/images.env (make host), else the newest local tag."""
    tag = os.environ.get(variable, "")
    if not tag and IMAGES_ENV.exists():
        for line in IMAGES_ENV.read_text().splitlines():
            if line.startswith(variable + "="):
                tag = line.split("=", 1)[1].strip()
    if not tag:
        try:
            listed = docker("images", repository, "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            skip_or_fail("docker not usable: %s" % exc)
        tags = [t for t in listed.split() if not t.endswith(":<none>")]
        tag = tags[0] if tags else ""
    if not tag:
        skip_or_fail("no %s image: run make host (the images role builds images/%s)" % (repository, repository.split("/")[-1]))
    if docker("image", "inspect", tag, check=False).returncode != 0:
        skip_or_fail("image %s not present: run make host" % tag)
    return tag


def ansible_env():
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")


def playbook(path, extra, json_output=False, timeout=600, check=False):
    """ansible-playbook on localhost; with json_output the ansible.posix.json callback's parsed output too."""
    env = ansible_env()
    if json_output:
        env.update(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    proc = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=%s" % (ROOT / ".venv/bin/python"),
                           str(path), "-e", json.dumps(extra)] + (["--check"] if check else []),
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    data = None
    if json_output and "{" in proc.stdout:
        data = json.loads(proc.stdout[proc.stdout.index("{"):])
    return proc, data
