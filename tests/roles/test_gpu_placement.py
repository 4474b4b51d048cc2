"""GPU placement per color, through the real inference role on localhost.

No GPU on this machine: every test renders the vLLM definitions with
``inference_render_only: true`` (nothing is created, no container is read) and checks
what Docker would be given (device_ids, --gpu-memory-utilization), or that the GPU budget
refuses the placement before any definition is described.
"""
import json
import os
import pathlib
import subprocess

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOKS = pathlib.Path(__file__).resolve().parent / "playbooks"
PRODUCTION_VARS = ROOT / "inventories" / "production" / "group_vars" / "all" / "main.yml"
VLLM = {"inference_engine": "vllm", "inference_render_only": True, "inference_mode": "independent",
        "inference_model_name": "qwen2.5-7b-instruct", "inference_vllm_model_path": "/srv/models/qwen"}


def play(playbook, variables):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", "localhost,", str(PLAYBOOKS / playbook),
                           "-e", json.dumps(variables)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def render(tmp_path, color, **settings):
    """The inference role for ``color``, rendered only: (process, inference_defined or None)."""
    result = tmp_path / ("defined-%s.json" % color)
    proc = play("role.yml", dict(VLLM, role_under_test="inference", inference_color=color, result_var="inference_defined",
                                 result_file=str(result), **settings))
    return proc, (json.loads(result.read_text()) if result.exists() else None)


def placement_of(definition):
    command = definition["command"]
    return (definition["device_requests"][0]["device_ids"],
            command[command.index("--gpu-memory-utilization") + 1])


def one_line(text):
    return " ".join(text.split())


def test_each_color_gets_its_own_gpu_and_share_rendered_only_no_gpu(tmp_path):
    settings = {"inference_vllm_color_gpus": {"blue": ["0"], "green": ["1"]},
                "inference_vllm_color_gpu_memory_utilization": {"blue": 0.9, "green": 0.6}}
    placed = {}
    for color in ("blue", "green"):
        proc, defined = render(tmp_path, color, **settings)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert defined["definition"]["name"] == "qa-llm-%s" % color
        placed[color] = placement_of(defined["definition"])
        # Prompts (questions and confidential passages) never reach vLLM's log.
        assert "--disable-log-requests" in defined["definition"]["command"]
        assert "GPU budget fits: localhost: GPU 0: blue 0.9 (0.9 of 1.0); GPU 1: green 0.6 (0.6 of 1.0)" \
            in one_line(proc.stdout), proc.stdout[-3000:]
    assert placed == {"blue": (["0"], "0.9"), "green": (["1"], "0.6")}


def test_two_colors_share_one_gpu_at_045_each_rendered_only_no_gpu(tmp_path):
    settings = {"inference_vllm_gpus": ["0"], "inference_vllm_color_gpu_memory_utilization": {"blue": 0.45, "green": 0.45}}
    for color in ("blue", "green"):
        proc, defined = render(tmp_path, color, **settings)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert placement_of(defined["definition"]) == (["0"], "0.45")


def test_two_colors_at_090_on_one_gpu_fail_with_the_fix_rendered_only_no_gpu(tmp_path):
    # The production example before issue 7: both colors GPU 0 at 0.90.
    proc, defined = render(tmp_path, "green", inference_vllm_gpus=["0"], inference_vllm_gpu_memory_utilization=0.9)
    assert proc.returncode != 0
    out = one_line(proc.stdout)
    assert "On localhost, GPU 0 would hold blue 0.9 + green 0.9 = 1.8 of its memory" in out, out[-3000:]
    assert "give green GPU 1 with inference_vllm_color_gpus" in out
    assert "lower the shares to 0.45 each with inference_vllm_color_gpu_memory_utilization" in out
    # Refused before the definition is described: nothing to apply.
    assert defined is None and "Keep the inference API key" not in out


def test_bad_share_and_unknown_color_are_refused_rendered_only_no_gpu(tmp_path):
    proc, defined = render(tmp_path, "blue", inference_vllm_color_gpus={"blue": ["0"], "gren": ["1"]},
                           inference_vllm_color_gpu_memory_utilization={"blue": 1.5})
    assert proc.returncode != 0
    out = one_line(proc.stdout)
    assert "inference_vllm_color_gpus names gren, which is not a color" in out, out[-3000:]
    assert "On localhost, blue has GPU memory share 1.5" in out and "(0, 1]" in out
    assert defined is None


def test_shared_mode_gives_the_one_server_the_single_settings_rendered_only_no_gpu(tmp_path):
    proc, defined = render(tmp_path, "blue", inference_mode="shared", inference_vllm_gpus=["0", "1"],
                           inference_vllm_gpu_memory_utilization=0.85,
                           inference_vllm_color_gpus={"blue": ["3"]})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert defined["definition"]["name"] == "qa-llm"
    assert placement_of(defined["definition"]) == (["0", "1"], "0.85")


def test_the_release_describes_the_target_color_on_its_gpu_rendered_only_no_gpu(tmp_path):
    # The path a release takes: release describe.yml -> inference define.yml for the target color.
    result = tmp_path / "described.json"
    kb = {"path": "/srv/kb/qa/v1", "checksum": "c" * 64, "version": "v1", "name": "qa",
          "embedding": {"host_dir": "", "path": "/opt/model", "name": "all-MiniLM-L6-v2"}}
    proc = play("role_tasks.yml", dict(VLLM, role_under_test="release", tasks_under_test="describe.yml",
                                       release_target="green", release_kb=kb,
                                       release_images={"qa-api": "llmops/qa-api:0.1.0-test"},
                                       inference_vllm_color_gpus={"blue": ["0"], "green": ["1"]},
                                       result_vars=["inference_defined", "inference_gpu_budget"],
                                       result_file=str(result)))
    assert proc.returncode == 0, proc.stdout[-3000:]
    facts = json.loads(result.read_text())
    assert placement_of(facts["inference_defined"]["definition"]) == (["1"], "0.9")
    assert facts["inference_gpu_budget"]["usage"] == {"localhost": {"0": {"blue": 0.9}, "1": {"green": 0.9}}}


def test_the_pre_flight_entry_point_refuses_before_anything_rendered_only_no_gpu(tmp_path):
    # playbooks/deploy.yml runs tasks_from gpu_budget.yml first, with the configuration only.
    proc = play("role_tasks.yml", dict(VLLM, role_under_test="inference", tasks_under_test="gpu_budget.yml",
                                       inference_render_only=False, inference_gpu_budget_running=False))
    assert proc.returncode != 0
    assert "GPU 0 would hold blue 0.9 + green 0.9 = 1.8" in one_line(proc.stdout), proc.stdout[-3000:]
    deploy = yaml.safe_load((ROOT / "playbooks" / "deploy.yml").read_text())
    under_lock = [task for task in deploy[0]["tasks"] if task["name"] == "Deploy under the lock"][0]
    first = under_lock["block"][0]
    assert first["ansible.builtin.include_role"]["tasks_from"] == "gpu_budget.yml"
    assert first["vars"]["inference_gpu_budget_running"] is False
    # A fleet host's budget counts only the colors it carries (llmops.bluegreen.fleet).
    assert "fleet_roles(inventory_hostname)" in first["vars"]["inference_gpu_budget_colors"]


def test_the_production_example_fits_its_gpus_rendered_only_no_gpu(tmp_path):
    inventory = yaml.safe_load(PRODUCTION_VARS.read_text())
    settings = dict((k, v) for k, v in inventory.items() if k.startswith("inference_"))
    assert settings["inference_mode"] == "independent" and settings["inference_engine"] == "vllm"
    placed = {}
    for color in ("blue", "green"):
        # The production example is a fleet: each color alone on its GPU host.
        proc, defined = render(tmp_path, color, inference_gpu_budget_colors=[color], **settings)
        assert proc.returncode == 0, proc.stdout[-3000:]
        placed[color] = placement_of(defined["definition"])
        # Prompts (questions and confidential passages) never reach vLLM's log.
        assert "--disable-log-requests" in defined["definition"]["command"]
    assert placed == {"blue": (["0"], "0.9"), "green": (["0"], "0.9")}, placed
    # The same settings on one host carrying both colors: refused before anything is described.
    (tmp_path / "one-host").mkdir()
    proc, defined = render(tmp_path / "one-host", "blue", **settings)
    assert proc.returncode != 0 and defined is None
    assert "GPU 0 would hold blue 0.9 + green 0.9 = 1.8" in one_line(proc.stdout), proc.stdout[-3000:]
