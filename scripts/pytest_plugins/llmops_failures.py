"""pytest plugin: append each failed test's id and one-line reason to $LLMOPS_TEST_FAILURES.

scripts/logged.sh loads it (PYTEST_ADDOPTS=-p llmops_failures) for every pytest a suite runs,
including the ones Molecule's verify playbooks start, whose output reaches the log folded
inside a task result. scripts/why_failed.py prints the file first.
"""
import os


def _reason(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def pytest_terminal_summary(terminalreporter):
    path = os.environ.get("LLMOPS_TEST_FAILURES")
    if not path:
        return
    reports = terminalreporter.stats.get("failed", []) + terminalreporter.stats.get("error", [])
    if not reports:
        return
    with open(path, "a", encoding="utf-8") as out:
        for report in reports:
            kind = "FAILED" if report.when == "call" else "ERROR at %s of" % report.when
            out.write("%s %s - %s\n" % (kind, report.nodeid, _reason(report)))
