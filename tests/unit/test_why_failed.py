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
