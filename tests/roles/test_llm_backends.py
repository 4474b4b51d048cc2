"""What the release hands the qa-api about its inference backends, computed by the real
task files (release describe.yml -> inference define.yml + qa_service define.yml) on
localhost: the `openai` engine's key reaches the qa-api as a secret file, never in the
environment; a fallback backend gets its own file, env and the retry settings."""
import json
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = pathlib.Path(__file__).resolve().parent / "playbooks" / "role_tasks.yml"

KEY = "sk-provider-0123456789abcdefSECRET"
FALLBACK_KEY = "sk-fallback-9876543210SECRET"
KB = {"path": "/srv/kb/qa/v1", "checksum": "c" * 64, "version": "v1", "name": "qa",
      "embedding": {"host_dir": "", "path": "/opt/model", "name": "all-MiniLM-L6-v2"}}
RESULTS = ["qa_service_defined", "qa_service_defined_secrets", "inference_defined"]


def describe(tmp_path, **extra):
    result = tmp_path / "described.json"
    variables = dict({"tasks_under_test": "describe.yml", "result_vars": RESULTS,
                      "release_target": "green", "release_kb": KB,
                      "release_images": {"qa-api": "llmops/qa-api:0.1.0-test"}}, **extra)
    variables.update(role_under_test="release", result_file=str(result))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", "localhost,", str(PLAYBOOK),
                           "-e", json.dumps(variables)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    return proc, (json.loads(result.read_text()) if result.exists() else None)


def test_the_openai_engine_key_reaches_the_qa_api_as_a_file_only(tmp_path):
    proc, facts = describe(tmp_path, inference_engine="openai",
                           inference_openai_base_url="https://provider.example/v1",
                           inference_openai_api_key=KEY, inference_model_name="gpt-x")
    assert proc.returncode == 0, proc.stdout[-3000:]
    qa = facts["qa_service_defined"]
    assert qa["env"]["QA_LLM_BASE_URL"] == "https://provider.example/v1"
    assert qa["env"]["QA_LLM_MODEL"] == "gpt-x"
    assert qa["env"]["QA_LLM_API_KEY_FILE"] == "/run/secrets/llm_api_key"
    mount = [m for m in qa["mounts"] if m["target"] == "/run/secrets/llm_api_key"]
    assert len(mount) == 1 and mount[0]["read_only"] is True
    assert mount[0]["source"].endswith("/llm_api_key")
    assert facts["qa_service_defined_secrets"]["llm_api_key"] == KEY
    # the key is in the secrets only: not in env values, the definition, or the log
    assert KEY not in json.dumps(qa) and KEY not in json.dumps(facts["inference_defined"])
    assert KEY not in proc.stdout + proc.stderr


def test_a_local_engine_gives_the_qa_api_no_key(tmp_path):
    proc, facts = describe(tmp_path, inference_engine="llamacpp", inference_openai_api_key=KEY,
                           inference_llamacpp_image="llmops/llm-llamacpp:x")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert facts["qa_service_defined_secrets"]["llm_api_key"] == ""
    assert "QA_LLM_FALLBACK_URL" not in facts["qa_service_defined"]["env"]
    assert set(facts["qa_service_defined_secrets"]) == {"redis_password", "llm_api_key"}


def test_a_fallback_backend_gets_env_and_its_own_key_file(tmp_path):
    proc, facts = describe(tmp_path, inference_engine="llamacpp",
                           inference_llamacpp_image="llmops/llm-llamacpp:x",
                           qa_service_llm_fallback_url="https://provider.example/v1",
                           qa_service_llm_fallback_model="gpt-x",
                           qa_service_llm_fallback_api_key=FALLBACK_KEY,
                           qa_service_llm_fallback_name="provider", qa_service_llm_attempts=4)
    assert proc.returncode == 0, proc.stdout[-3000:]
    env = facts["qa_service_defined"]["env"]
    assert env["QA_LLM_FALLBACK_URL"] == "https://provider.example/v1"
    assert env["QA_LLM_FALLBACK_MODEL"] == "gpt-x" and env["QA_LLM_FALLBACK_NAME"] == "provider"
    assert env["QA_LLM_FALLBACK_API_KEY_FILE"] == "/run/secrets/llm_fallback_api_key"
    assert env["QA_LLM_ATTEMPTS"] == "4" and env["QA_LLM_COOLDOWN"] == "30"
    assert "/run/secrets/llm_fallback_api_key" in [m["target"] for m in facts["qa_service_defined"]["mounts"]]
    assert facts["qa_service_defined_secrets"]["llm_fallback_api_key"] == FALLBACK_KEY
    assert FALLBACK_KEY not in json.dumps(facts["qa_service_defined"])
    assert FALLBACK_KEY not in proc.stdout + proc.stderr
