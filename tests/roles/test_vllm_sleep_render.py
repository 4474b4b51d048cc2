"""vLLM sleep mode as the inference role renders it (no GPU here: rendered only, nothing created),
and where the release flow wakes a parked color. What the flags do is tested against the vLLM
double in tests/unit/plugins/modules/test_vllm_sleep*.py."""
import json

import pytest
import yaml

from test_gpu_placement import ROOT, VLLM, one_line, play

SPLIT = {"inference_vllm_color_gpus": {"blue": ["0"], "green": ["1"]}}


def render(tmp_path, **settings):
    result = tmp_path / "defined.json"
    proc = play("role.yml", dict(VLLM, **SPLIT, role_under_test="inference", inference_color="green",
                                 result_var="inference_defined", result_file=str(result), **settings))
    return proc, (json.loads(result.read_text())["definition"] if result.exists() else None)


def test_sleep_mode_renders_the_flag_and_dev_mode_rendered_only_no_gpu(tmp_path):
    proc, definition = render(tmp_path, inference_vllm_sleep_mode=True, inference_vllm_image="vllm/vllm-openai:v0.8.5")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "--enable-sleep-mode" in definition["command"]
    assert definition["env"]["VLLM_SERVER_DEV_MODE"] == "1"
    # The placement and the other flags are unchanged by it.
    assert definition["device_requests"][0]["device_ids"] == ["1"] and "--disable-log-requests" in definition["command"]


def test_sleep_mode_off_renders_neither_rendered_only_no_gpu(tmp_path):
    proc, definition = render(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "--enable-sleep-mode" not in definition["command"] and "VLLM_SERVER_DEV_MODE" not in definition["env"]


@pytest.mark.parametrize("image, version", [
    ("vllm/vllm-openai:v0.6.3", "0.6.3"),
    ("registry.example.internal:5000/vllm/vllm-openai:0.7.3-cu124", "0.7.3"),
])
def test_sleep_mode_refuses_a_vllm_older_than_08_rendered_only_no_gpu(tmp_path, image, version):
    proc, definition = render(tmp_path, inference_vllm_sleep_mode=True, inference_vllm_image=image)
    out = one_line(proc.stdout)
    assert proc.returncode != 0 and definition is None
    assert "inference_vllm_sleep_mode needs vLLM 0.8 or later" in out and "is vLLM %s" % version in out, out[-2000:]
    assert "or set inference_vllm_sleep_mode: false" in out


@pytest.mark.parametrize("image", [
    "registry.example.internal:5000/vllm/vllm-openai:v0.9.1",
    "registry.example.internal:5000/vllm/vllm-openai",          # no tag: version unknown, not refused
    "vllm/vllm-openai@sha256:" + "a" * 64,
])
def test_sleep_mode_takes_a_newer_or_unnamed_version_rendered_only_no_gpu(tmp_path, image):
    proc, definition = render(tmp_path, inference_vllm_sleep_mode=True, inference_vllm_image=image)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert definition["image"] == image


def tasks(path):
    return yaml.safe_load((ROOT / path).read_text())


def names(task_list):
    return [task.get("name", "") for task in task_list]


def test_a_release_wakes_a_parked_idle_color_before_its_gate_and_switch():
    block = tasks("roles/release/tasks/main.yml")[2]["block"]
    order = names(block)
    wake = order.index("Wake the new color's inference server if it is parked")
    assert order.index("Bring up the idle color") < wake < order.index("Quality gate on the new color") \
        < order.index("Switch the gateway")
    assert block[wake]["ansible.builtin.include_tasks"] == "wake.yml"
    assert "inference_vllm_sleep_mode | default(false) | bool" in block[wake]["when"]


def test_rollback_wakes_before_it_switches():
    block = tasks("playbooks/rollback.yml")[0]["tasks"][1]["block"]
    order = names(block)
    wake = order.index("Wake the color to go back to if it is parked (vLLM sleep mode)")
    assert block[wake]["ansible.builtin.include_role"]["tasks_from"] == "wake.yml"
    assert wake < order.index("Switch back")
