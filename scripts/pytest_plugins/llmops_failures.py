"""pytest plugin: append each failed test's id and reason to $LLMOPS_TEST_FAILURES.

The first line of the reason follows the id; the next lines of the message (at most
DETAIL_LINES, e.g. what assert_load_clean lists) follow indented with "| ".

scripts/logged.sh loads it (PYTEST_ADDOPTS=-p llmops_failures) for every pytest a suite runs,
including the ones Molecule's verify playbooks start, whose output reaches the log folded
inside a task result. scripts/why_failed.py prints the file first.
"""
import os

DETAIL_LINES = 40


def _reason(report):
    """The message's first line, and the lines after it (cut)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr or "")
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "", []
    # pytest indents an assertion message's next lines by two spaces.
    rest = [line[2:] if line.startswith("  ") else line for line in lines[1:DETAIL_LINES + 1]]
    return lines[0].strip()[:300], [line[:300] for line in rest]


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
            first, rest = _reason(report)
            out.write("%s %s - %s\n" % (kind, report.nodeid, first))
            out.writelines("  | %s\n" % line for line in rest)
