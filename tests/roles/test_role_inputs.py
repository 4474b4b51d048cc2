"""Roles refuse bad input at their start with a message naming the problem.

Each test runs a real ansible-playbook on localhost; argument_specs are checked
before any task of the role runs, so nothing on the host is touched.
"""
import json
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = pathlib.Path(__file__).resolve().parent / "playbooks" / "role.yml"


def run_role(role, extra, result_var=None, result_file=None):
    extra = dict(extra, role_under_test=role)
    if result_var:
        extra.update(result_var=result_var, result_file=str(result_file))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", "localhost,", str(PLAYBOOK),
                           "-e", json.dumps(extra)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_unknown_inference_engine_fails_at_role_start():
    proc = run_role("inference", {"inference_engine": "tgi"})
    assert proc.returncode != 0
    assert "inference_engine" in proc.stdout and "llamacpp, vllm, openai" in proc.stdout, proc.stdout[-2000:]
    assert "Validating arguments against arg spec" in proc.stdout


def test_wrong_variable_type_fails_at_role_start():
    proc = run_role("qa_service", {"qa_service_top_k": "many", "qa_service_image": "x", "qa_service_kb_path": "/x",
                                   "qa_service_kb_checksum": "x"})
    assert proc.returncode != 0
    assert "qa_service_top_k" in proc.stdout and "int" in proc.stdout, proc.stdout[-2000:]


def test_missing_required_secret_fails_and_is_not_printed():
    proc = run_role("redis", {"redis_image": "llmops/redis:x"})
    assert proc.returncode != 0
    assert "redis_password" in proc.stdout, proc.stdout[-2000:]


def test_docs_dir_without_supported_files_names_the_dir(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "diagram.png").write_bytes(b"\x89PNG\r\n")
    (docs / "notes.xls").write_bytes(b"\xd0\xcf\x11\xe0")  # old binary Excel: not read
    proc = run_role("knowledge_base", {"knowledge_base_src": str(docs) + "/",
                                       "knowledge_base_state_dir": str(tmp_path / "state"),
                                       "knowledge_base_builder_image": "llmops/qa-api:none"})
    assert proc.returncode != 0
    assert "no supported documents" in proc.stdout.lower(), proc.stdout[-2000:]
    assert str(tmp_path / "state") in proc.stdout, proc.stdout[-2000:]
    assert not list((tmp_path / "state").glob("kb/*/*/manifest.json"))


def test_vllm_definition_requests_the_gpus_rendered_only_no_gpu_here(tmp_path):
    # No GPU on this machine: the container definition is rendered and checked, not run.
    proc = run_role("inference", {"inference_engine": "vllm", "inference_render_only": True,
                                  "inference_mode": "independent", "inference_color": "green",
                                  # Independent mode: each color its own GPU (one GPU for both at 0.90 is refused).
                                  "inference_vllm_color_gpus": {"blue": ["0"], "green": ["1"]},
                                  "inference_model_name": "qwen2.5-7b-instruct",
                                  "inference_vllm_model_path": "/srv/models/qwen"},
                    result_var="inference_defined", result_file=tmp_path / "definition.json")
    assert proc.returncode == 0, proc.stdout[-2000:]
    definition = json.loads((tmp_path / "definition.json").read_text())["definition"]
    assert definition["name"] == "qa-llm-green"
    assert definition["device_requests"] == [{"driver": "nvidia", "device_ids": ["1"], "capabilities": [["gpu"]]}]
    assert {"type": "bind", "source": "/srv/models/qwen", "target": "/models/model", "read_only": True} in definition["mounts"]
    assert "--served-model-name" in definition["command"]
    assert definition["command"][definition["command"].index("--served-model-name") + 1] == "qwen2.5-7b-instruct"
