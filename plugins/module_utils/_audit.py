# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The audit log as evidence: each line names the sha256 of the line before it (docs/contracts-state.md "State").

A changed, inserted or removed line breaks the chain at the next line, and ``verify_lines``
names it. Lines written before the chain existed (no ``prev``) are reported, not judged.
Cutting lines off the end leaves no trace in the file itself: the webhook receiver (every
line as it is written) is the copy to compare with.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import hashlib
import json
import os

GENESIS = '0' * 64
MODE = 0o600


def line_hash(line):
    """sha256 hex of one line's text, without its newline."""
    return hashlib.sha256(line.rstrip('\n').encode('utf-8')).hexdigest()


def chained(record, last_line):
    """``(record with prev, its JSON line)``: ``prev`` is the hash of ``last_line`` (GENESIS for the first)."""
    record = dict(record, prev=line_hash(last_line) if last_line else GENESIS)
    return record, json.dumps(record, sort_keys=True) + '\n'


def _last_line(fd):
    """The last line of an open file (read backwards), or None when it is empty."""
    end = os.lseek(fd, 0, os.SEEK_END)
    data, pos = b'', end
    while pos > 0:
        step = min(4096, pos)
        pos -= step
        os.lseek(fd, pos, os.SEEK_SET)
        data = os.read(fd, step) + data
        if data.rstrip(b'\n').count(b'\n') >= 1:
            break
    text = data.decode('utf-8', 'replace').rstrip('\n')
    return text.rsplit('\n', 1)[-1] if text else None


def append(path, record):
    """Append ``record`` chained to the last line, under an exclusive flock, fsynced; the file is 0600.

    Returns the record as written (with ``prev``): what a webhook receiver needs to check the chain.
    """
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_mode & 0o777 != MODE:
            os.fchmod(fd, MODE)  # a log from before 0.2.0 was 0644
        record, line = chained(record, _last_line(fd))
        os.write(fd, line.encode('utf-8'))
        os.fsync(fd)
    finally:
        os.close(fd)
    return record


def verify_lines(lines):
    """``{ok, lines, chained, unchained, problems}`` for the lines of an audit log, oldest first.

    A problem names the line number (1-based) whose ``prev`` does not match the line before it:
    that line, or the one before, was changed, inserted or removed.
    """
    problems, chained_count, unchained, previous, count = [], 0, 0, None, 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        count += 1
        try:
            record = json.loads(line)
        except ValueError:
            problems.append({'line': number, 'problem': 'not JSON: %r' % line[:120]})
            previous = line
            continue
        prev = record.get('prev') if isinstance(record, dict) else None
        if prev is None:
            if chained_count:
                problems.append({'line': number, 'problem': 'no prev hash after chained lines (inserted or edited)'})
            else:
                unchained += 1
        else:
            chained_count += 1
            expected = line_hash(previous) if previous is not None else GENESIS
            if prev != expected:
                problems.append({'line': number, 'problem': 'prev is %s but line %d hashes to %s: line %d or %d was '
                                 'changed, inserted or removed' % (prev[:16], number - 1, expected[:16],
                                                                   number - 1, number)})
        previous = line
    return {'ok': not problems, 'lines': count, 'chained': chained_count, 'unchained': unchained,
            'problems': problems}
