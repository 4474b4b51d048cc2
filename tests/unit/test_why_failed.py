"""scripts/why_failed.py: CI shows only the end of a run, so the summary must name the real cause."""
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "why_failed.py"
spec = importlib.util.spec_from_file_location("why_failed", SCRIPT)
why_failed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(why_failed)

MOLECULE_LOG = """\
TASK [Releases and their gates against the deployed service (pytest, real load)]
ok: [llmops] => (item=tests/integration/test_release_faults.py)
failed: [llmops] (item=tests/integration/test_canary.py) => {"ansible_loop_var": "item", "stdout": \
"..F\\nFAILED tests/integration/test_canary.py::test_breach_rolls_back - AssertionError: no rollback\\n1 failed"}
PLAY RECAP
llmops : ok=3 changed=0 unreachable=0 failed=1
ERROR    Ansible return code was 2, command was: ansible-playbook verify.yml
ERROR    Molecule executed 1 scenario (1 failed)
  bluegreen ➜ verify: Executed: Failed
"""


def test_failed_task_wins_over_molecule_error_lines(tmp_path, capsys):
    log = tmp_path / "molecule.log"
    log.write_text(MOLECULE_LOG, encoding="utf-8")
    why_failed.main(str(log), "molecule-bluegreen", "2")
    out = capsys.readouterr().out
    assert "failed: [llmops] (item=tests/integration/test_canary.py)" in out
    assert "FAILED tests/integration/test_canary.py::test_breach_rolls_back - AssertionError: no rollback" in out


def test_without_a_known_cause_the_tail_is_shown(tmp_path, capsys):
    log = tmp_path / "plain.log"
    log.write_text("".join("line %d\n" % n for n in range(40)), encoding="utf-8")
    why_failed.main(str(log), "plain", "1")
    out = capsys.readouterr().out
    assert "line 39" in out and "line 10" not in out


def test_a_pytest_run_inside_a_playbook_names_its_failed_tests(tmp_path, capsys):
    """The plugin logged.sh loads notes each failure; the account names it even when the log folds it."""
    import os
    import subprocess
    import sys
    plugins = SCRIPT.parent / "pytest_plugins"
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\n\ndef test_ok():\n    pass\n\n\n"
        "def test_share_is_off():\n    assert 51 == 25, 'share of green at 25 %\\nsamples 200 from +3 s'\n\n\n"
        "@pytest.fixture\ndef broken():\n    raise RuntimeError('no stack deployed')\n\n\n"
        "def test_needs_stack(broken):\n    pass\n", encoding="utf-8")
    failures = tmp_path / "suite.failures"
    env = dict(os.environ, LLMOPS_TEST_FAILURES=str(failures), PYTHONPATH=str(plugins),
               PYTEST_ADDOPTS="-p llmops_failures")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_sample.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # The log as Molecule leaves it: the run folded into one task result, lines cut anywhere.
    log = tmp_path / "molecule.log"
    log.write_text("fatal: [localhost]: FAILED! => {\"stdout\": \"..F\\nFAIL\n  ED test_sample.py::test_sh\n  are\"}\n",
                   encoding="utf-8")
    why_failed.main(str(log), "molecule-canary", "2", str(failures))
    out = capsys.readouterr().out
    assert "FAILED test_sample.py::test_share_is_off - AssertionError: share of green at 25 %" in out, out
    assert "  | samples 200 from +3 s" in out, out  # the message's next lines follow
    assert "ERROR at setup of test_sample.py::test_needs_stack - RuntimeError: no stack deployed" in out, out
    assert "test_ok" not in out
