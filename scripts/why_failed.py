"""Summarize why a logged test step failed: the failed tasks' messages and output tails.

Reads the log of scripts/logged.sh (ansible yaml results, pytest output, molecule's
frames) and prints at most about 40 lines, because CI shows only the end of a run.
"""
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FRAME = re.compile(r"^\s*[│┃|]\s?")  # molecule draws a frame around ansible's output
START = re.compile(r"(fatal: \[|FAILED! =>|^=+ FAILURES =+|^\s*FAILED |^ERROR |AssertionError"
                   r"|^\s*E\s{3}|assert-zero)")
KEEP = 14  # lines shown after each cause
WIDTH = 240


def main(path, name, status):
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = [FRAME.sub("", ANSI.sub("", line.rstrip("\n"))) for line in handle]
    causes = [i for i, line in enumerate(lines) if START.search(line)]
    print("=" * 72)
    print("why %s failed (exit %s; whole log: %s)" % (name, status, path))
    shown = set()
    # The last causes are nearest to the failure; show up to three, in order.
    for index in causes[-3:]:
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
    main(*sys.argv[1:4])
