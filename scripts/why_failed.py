"""Summarize why a logged test step failed: the failed tasks' messages and output tails.

Reads the log of scripts/logged.sh (ansible yaml results, pytest output, molecule's
frames) and prints at most about 50 lines, because CI shows only the end of a run.
Ansible's "fatal:" results and pytest's failures come first: molecule's own ERROR lines
at the end of a run only repeat that a playbook failed.
"""
import os
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FRAME = re.compile(r"^\s*[│┃|]\s?")  # molecule draws a frame around ansible's output
# Causes, strongest first: a failed task, a pytest failure, then anything that says error.
CAUSES = (
    re.compile(r"fatal: \[|FAILED! =>|failed: \[.*\] \(item="),
    re.compile(r"^=+ FAILURES =+|^\s*FAILED |AssertionError|^\s*E\s{3}|assert-zero|^=+ short test summary"),
    re.compile(r"^ERROR "),
)
KEEP = 14  # lines shown after each cause
WIDTH = 240
SHOWN = 3


def pick(lines):
    """Line numbers of the causes to show: the strongest kind present, the last few of it."""
    for pattern in CAUSES:
        found = [i for i, line in enumerate(lines) if pattern.search(line)]
        if found:
            return found[-SHOWN:]
    return []


def pytest_summary(lines):
    """pytest's 'FAILED path::test - reason' lines, wherever they are (inside a task's stdout too)."""
    found = []
    for line in lines:
        for part in line.replace("\\n", "\n").splitlines():
            part = part.strip().strip('",')
            if part.startswith("FAILED ") and "::" in part and part not in found:
                found.append(part)
    return found[-10:]


def noted_failures(path):
    """The failures pytest itself noted (scripts/pytest_plugins/llmops_failures.py), unfolded."""
    if not path or not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()][-120:]


def main(path, name, status, failures_path=None):
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = [FRAME.sub("", ANSI.sub("", line.rstrip("\n"))) for line in handle]
    print("=" * 72)
    print("why %s failed (exit %s; whole log: %s)" % (name, status, path))
    noted = noted_failures(failures_path)
    if noted:
        print("  tests that failed:")
        for line in noted:
            print("    " + line[:WIDTH])
    # pytest's one-line summary first: the end of a run may be cut to its last lines.
    summary = pytest_summary(lines)
    if summary and not noted:
        print("  pytest failures:")
        for line in summary:
            print("    " + line[:WIDTH])
    shown = set()
    causes = pick(lines)
    for index in causes:
        for line in lines[index:index + KEEP]:
            if index in shown:
                break
            print("  " + (line if len(line) <= WIDTH else line[:WIDTH] + " ..."))
        shown.update(range(index, index + KEEP))
    if not causes:
        for line in lines[-15:]:
            print("  " + line[:WIDTH])
    print("=" * 72)


if __name__ == "__main__":
    main(*sys.argv[1:5])
