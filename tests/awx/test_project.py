"""An AWX project checkout of the collection: requirements, execution environment, config as code.

ansible-builder and ansible-galaxy run for real and offline; nothing is built or pulled.
"""
import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
# A task's module key: "- community.docker.docker_container:" or "  community.docker.docker_image_info:".
FQCN = re.compile(r"^\s*(?:-\s+)?([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+:(?:\s|$)", re.M)


def load(rel):
    return yaml.safe_load((ROOT / rel).read_text())


def installed_version(fqcn):
    ns, name = fqcn.split(".")
    import ansible_collections  # pylint: disable=import-outside-toplevel
    for base in ansible_collections.__path__:
        manifest = pathlib.Path(base, ns, name, "MANIFEST.json")
        if manifest.exists():
            return yaml.safe_load(manifest.read_text())["collection_info"]["version"]
    return None


def test_collection_requirements_cover_what_the_content_uses_and_what_is_installed():
    required = {c["name"]: c["version"] for c in load("collections/requirements.yml")["collections"]}
    used = set()
    for path in list(ROOT.glob("roles/*/tasks/*.yml")) + list(ROOT.glob("playbooks/*.yml")) + [ROOT / "deploy.yml"]:
        used |= set(FQCN.findall(path.read_text()))
    used -= {"ansible.builtin", "llmops.bluegreen"}
    assert used and used <= set(required), "used but not in collections/requirements.yml: %s" % (used - set(required))
    for fqcn, spec in required.items():
        version = installed_version(fqcn)
        assert version and meets_requirements(version, spec), "%s %s does not meet %s" % (fqcn, version, spec)
    # galaxy.yml's minimums are the lower bounds.
    for fqcn, spec in load("galaxy.yml")["dependencies"].items():
        assert required[fqcn].startswith(spec), (fqcn, spec, required[fqcn])


def test_ansible_cfg_needs_no_venv_or_cache_and_keeps_awx_paths():
    cfg = (ROOT / "ansible.cfg").read_text()
    settings = "\n".join(line for line in cfg.splitlines() if not line.lstrip().startswith("#"))
    assert ".venv" not in settings and ".cache" not in settings
    path = re.search(r"^collections_path\s*=\s*(.*)$", settings, re.M).group(1).split(":")
    assert path[0] == "collections" and "/runner/requirements_collections" in path
    assert "/usr/share/ansible/collections" in path
    link = ROOT / "playbooks" / "collections"
    assert link.is_symlink() and (link / "ansible_collections/llmops/bluegreen/galaxy.yml").is_file()


def _tasks(items, inherited_become=None):
    for task in items or []:
        become = task.get("become", inherited_become)
        yield task, become
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key), become)


def test_controller_side_tasks_never_become():
    files = list(ROOT.glob("roles/*/tasks/*.yml")) + [ROOT / "deploy.yml"]
    for play in load("playbooks/host.yml") + load("deploy.yml"):
        assert "become" not in play or play.get("hosts") != "localhost"
    offenders = []
    for path in files + list(ROOT.glob("playbooks/*.yml")):
        data = yaml.safe_load(path.read_text()) or []
        plays = [p for p in data if "tasks" in p or "pre_tasks" in p] if "roles/" not in str(path) else [{"tasks": data}]
        for play in plays:
            for task, become in _tasks(play.get("pre_tasks", []) + play.get("tasks", [])):
                if task.get("delegate_to") == "localhost" and become is not False:
                    offenders.append("%s: %s" % (path.relative_to(ROOT), task.get("name")))
    assert not offenders, offenders


def test_introspect_reads_the_installed_collection(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path))
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, env=env)
    tarball = next(tmp_path.glob("llmops-bluegreen-*.tar.gz"))
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "--force", "-p",
                    str(tmp_path / "installed"), str(tarball)], check=True, capture_output=True, env=env)
    installed = tmp_path / "installed" / "ansible_collections" / "llmops" / "bluegreen"
    assert not (installed / "playbooks" / "collections").exists(), "the link must not ship"
    proc = subprocess.run([str(BIN / "ansible-builder"), "introspect", str(tmp_path / "installed")],
                          capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = yaml.safe_load(proc.stdout.split("\n", 1)[1])
    assert "docker>=7.0  # from collection llmops.bluegreen" in data["python"]
    assert any(line.startswith("openssh-client [platform:dpkg]") for line in data["system"])


def test_builder_create_writes_an_offline_build_context(tmp_path):
    proc = subprocess.run([str(BIN / "ansible-builder"), "create", "-f", str(ROOT / "execution-environment.yml"),
                           "-c", str(tmp_path / "ctx")], capture_output=True, text=True, check=False,
                          env=dict(os.environ, HOME=str(tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dockerfile = (tmp_path / "ctx" / "Dockerfile").read_text()
    assert 'ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--offline"' in dockerfile
    assert "ENV PIP_NO_INDEX=1 PIP_FIND_LINKS=/build/wheels" in dockerfile
    galaxy = yaml.safe_load((tmp_path / "ctx" / "_build" / "requirements.yml").read_text())["collections"]
    assert all(c["type"] == "dir" and c["name"].startswith("/build/collections/") for c in galaxy)
    shipped = {c["name"].rsplit("/", 1)[1] for c in galaxy}
    assert {"llmops.bluegreen"} | {c["name"] for c in load("collections/requirements.yml")["collections"]} <= shipped


def test_awx_workflow_and_templates_are_consistent():
    config = load("awx/vars/controller.yml")
    templates = {t["name"]: t for t in config["controller_templates"]}
    assert {t["playbook"] for t in templates.values()} == {"playbooks/%s.yml" % p for p in
                                                           ("deploy", "rollback", "status", "retire", "kb_refresh",
                                                            "archive_logs")}
    for template in templates.values():
        playbook = (ROOT / template["playbook"]).read_text()
        for question in template["survey_spec"]["spec"]:
            # A survey variable the playbook (or the release role it runs) never reads would do nothing.
            assert question["variable"] in playbook + (ROOT / "roles/release/defaults/main.yml").read_text(), \
                (template["name"], question["variable"])
    (workflow,) = config["controller_workflows"]
    nodes = {n["identifier"]: n for n in workflow["workflow_nodes"]}

    def after(node, kind):
        return [n["identifier"] for n in nodes[node].get("related", {}).get(kind, [])]
    assert (after("deploy", "success_nodes"), after("deploy", "failure_nodes")) == (["approve"], ["rollback"])
    assert nodes["approve"]["unified_job_template"]["type"] == "workflow_approval"
    assert (after("approve", "success_nodes"), after("approve", "failure_nodes")) == (["promote"], ["rollback"])
    for node in nodes.values():
        ujt = node["unified_job_template"]
        if ujt["type"] == "job_template":
            assert ujt["name"] in templates, ujt["name"]
    assert nodes["promote"]["unified_job_template"]["name"] == "llmops retire"
    assert nodes["promote"]["extra_data"] == {"retire_force": "true"}
    assert {s["unified_job_template"] for s in config["controller_schedules"]} <= set(templates)


@pytest.mark.parametrize("playbook", ["awx/configure.yml"])
def test_awx_configuration_playbook_parses(playbook):
    proc = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", str(ROOT / playbook)], cwd=ROOT,
                          capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
