"""deploy.yml refuses settings given to one color host only (playbooks/tasks/color_host_settings.yml).

A color's containers are defined once, on the gateway host, from its variables: an
inference_* or qa_service_* variable that a color host sets for itself would be ignored.
Runs the task file with ansible-playbook on an inventory of local hosts (no Docker).
"""
import json
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAY = """
- name: The check of deploy.yml
  hosts: llmops
  gather_facts: false
  vars:
    deploy_fleet: "{{ groups | llmops.bluegreen.fleet(hostvars, 'qa') }}"
  tasks:
    - name: Check
      ansible.builtin.include_tasks: %s/playbooks/tasks/color_host_settings.yml
""" % ROOT


def run(tmp_path, gateway=None, blue=None, green=None, green_group=None):
    inventory = {"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                                  "inference_engine": "vllm", "inference_vllm_gpus": ["0"], "qa_service_cache_ttl": 60},
                         "children": {"llmops": {"children": {
                             "llmops_gateway": {"hosts": {"gw": dict({"llmops_private_address": "10.0.0.1"}, **(gateway or {}))}},
                             "llmops_blue": {"hosts": {"b1": dict({"llmops_private_address": "10.0.0.2"}, **(blue or {}))}},
                             "llmops_green": {"hosts": {"g1": dict({"llmops_private_address": "10.0.0.3"}, **(green or {}))},
                                              "vars": green_group or {}}}}}}}
    (tmp_path / "hosts.yml").write_text(json.dumps(inventory))
    (tmp_path / "play.yml").write_text(PLAY)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
                           str(tmp_path / "play.yml")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    return proc.returncode, " ".join(proc.stdout.split())


def test_settings_for_every_host_pass(tmp_path):
    # group_vars/all, and what only the gateway host defines (the definitions are computed there).
    code, out = run(tmp_path, gateway={"inference_vllm_max_model_len": 4096, "docker_host_log_max_size": "20m"},
                    green={"docker_host_log_max_size": "50m"})
    assert code == 0, out[-3000:]


def test_a_color_hosts_own_values_are_refused_naming_host_names_and_fix(tmp_path):
    code, out = run(tmp_path, green={"inference_vllm_gpus": ["1"]}, blue={"qa_service_cache_ttl": 60},
                    green_group={"qa_service_pii_redact": False})
    assert code != 0
    assert ("g1 has its own value of inference_vllm_gpus, qa_service_pii_redact, but a color's containers are "
            "defined on the gateway host gw from its variables") in out, out[-3000:]
    # The same value as the gateway host's changes nothing, so b1 is not named.
    assert "b1 has" not in out
    assert "group_vars/all" in out and "inference_vllm_color_gpus" in out


def test_a_value_only_the_gateway_host_overrides_is_refused_too(tmp_path):
    # The color hosts keep group_vars/all's 60 while the definition would take the gateway's 120.
    code, out = run(tmp_path, gateway={"qa_service_cache_ttl": 120})
    assert code != 0
    assert "b1 has its own value of qa_service_cache_ttl" in out and "g1 has its own value of qa_service_cache_ttl" in out
