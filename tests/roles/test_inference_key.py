"""The inference server's API key, through the real inference role on localhost (rendered only).

The key is in a file of the service's secrets directory, mounted read-only: what Docker is
given (the definition, which color_spec hashes, shows and stores) names the file, never the key.
The server side (llama.cpp refusing a request without it, the probe reading it inside the
container) is tests/unit/plugins/modules/test_qa_probe.py on the real image.
"""
import json

from test_gpu_placement import VLLM, play

KEY = "k3y-" + "x" * 36
MOUNT = "/run/secrets/inference_api_key"


def render(tmp_path, **settings):
    result = tmp_path / "defined.json"
    secrets = tmp_path / "secrets.json"
    base = dict({"role_under_test": "inference", "inference_render_only": True, "inference_color": "green"}, **settings)
    proc = play("role.yml", dict(base, result_var="inference_defined", result_file=str(result)))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert KEY not in proc.stdout, "the key reached the play's output"
    proc = play("role.yml", dict(base, result_var="inference_defined_secrets", result_file=str(secrets)))
    return json.loads(result.read_text()), json.loads(secrets.read_text())


def key_mount(definition):
    return [m for m in definition.get("mounts") or [] if m["target"] == MOUNT]


def test_llamacpp_reads_the_key_from_a_mounted_file(tmp_path):
    defined, secrets = render(tmp_path, inference_engine="llamacpp", inference_mode="independent",
                              inference_api_key=KEY, llmops_service="svc")
    definition = defined["definition"]
    assert definition["env"]["LLM_API_KEY_FILE"] == MOUNT
    (mount,) = key_mount(definition)
    assert mount["read_only"] and mount["source"] == "/var/lib/llmops/svc/secrets/inference_api_key"
    assert KEY not in json.dumps(defined)
    # What the color's qa-api is handed to send.
    assert secrets["api_key"] == KEY


def test_vllm_gets_the_key_at_start_not_as_an_argument(tmp_path):
    defined, secrets = render(tmp_path, **dict(VLLM, inference_api_key=KEY,
                                               inference_vllm_color_gpus={"blue": ["0"], "green": ["1"]}))
    definition = defined["definition"]
    assert definition["entrypoint"][:2] == ["/bin/sh", "-c"] and "$(cat %s)" % MOUNT in definition["entrypoint"][2]
    assert "--api-key" not in definition["command"] and key_mount(definition)
    assert KEY not in json.dumps(defined) and secrets["api_key"] == KEY


def test_without_a_key_nothing_is_mounted_and_nothing_is_sent(tmp_path):
    defined, secrets = render(tmp_path, inference_engine="llamacpp", inference_mode="independent")
    assert "LLM_API_KEY_FILE" not in defined["definition"]["env"] and not key_mount(defined["definition"])
    assert secrets["api_key"] == ""
