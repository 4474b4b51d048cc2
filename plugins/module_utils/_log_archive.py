# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Archives of container logs: positions, which lines are new, archive names, retention.

Pure decisions, tested without Docker (the module does the I/O). A line is what
``docker logs --timestamps`` prints: ``<RFC 3339 time> <text>``. The position of a
container is the newest time archived and how many lines carried exactly that time,
so a run reads from that second on and skips what is already archived: no line is lost
or archived twice, even when several lines share a timestamp.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import json
import os
import re
import time

POSITIONS_SCHEMA = 1
ARCHIVE_SUFFIX = '.log.gz'
ENCRYPTED_SUFFIX = '.p7m'
# <first line's time, compact UTC>-<container id, 12 hex>.log.gz[.p7m]: sorts by time.
ARCHIVE_RE = re.compile(r'^(\d{8}T\d{6}\.\d{9}Z)-([0-9a-f]{12})\.log\.gz(\.p7m)?$')
_TS_RE = re.compile(
    br'^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})(?: |$)')
# Docker names: [a-zA-Z0-9][a-zA-Z0-9_.-]*; used as a directory name.
_CONTAINER_NAME_RE = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$')


class LogArchiveError(ValueError):
    """Bad input or state; the message names the file or value and the fix."""


def normalize_ts(raw):
    """A Docker log time (bytes or text) as fixed-width UTC ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``, or None.

    Docker trims trailing zeros of the fraction in some versions; fixed width makes the
    strings compare in time order.
    """
    if not isinstance(raw, bytes):
        raw = str(raw).encode('ascii', 'replace')
    match = _TS_RE.match(raw)
    if not match:
        return None
    base, fraction, zone = (part.decode('ascii') if part else '' for part in match.groups())
    try:
        seconds = calendar.timegm(time.strptime(base, '%Y-%m-%dT%H:%M:%S'))
    except ValueError:
        return None
    if zone != 'Z':
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[0] == '+' else -offset
    return '%s.%sZ' % (time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds)), fraction.ljust(9, '0'))


def ts_seconds(norm):
    """Whole epoch seconds of a normalized time (the ``since`` Docker is asked for)."""
    return calendar.timegm(time.strptime(norm[:19], '%Y-%m-%dT%H:%M:%S'))


def ts_from_epoch(epoch):
    """Normalized time of epoch seconds (float), to the microsecond."""
    whole = int(epoch)
    return '%s.%06d000Z' % (time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole)), int((epoch - whole) * 1e6))


def iter_lines(chunks):
    """Lines (bytes, without the newline) of a stream of byte chunks cut anywhere."""
    pending = b''
    for chunk in chunks:
        pending += chunk
        lines = pending.split(b'\n')
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending


class NewLines(object):
    """Decides, line by line in the order Docker returns them, which lines are new.

    ``position``: ``{'last': <normalized time>, 'same': <lines archived at exactly that time>}``
    or None (nothing archived yet). ``cutoff``: lines newer than this normalized time are left
    for the next run: stdout and stderr are stamped before they are written, so a line may
    reach the log file a little after a newer one; waiting a moment keeps it from falling
    behind the position.
    """

    def __init__(self, position, cutoff):
        position = position or {}
        self.old_last = position.get('last')
        self.old_same = int(position.get('same') or 0)
        self.cutoff = cutoff
        self.seen_at_old_last = 0
        self.last, self.same = self.old_last, self.old_same
        self.first = None
        self.count = 0
        self.deferred = 0
        self._previous = False

    def feed(self, line):
        """True when ``line`` is to be archived. A line without a time (the rest of a long
        message) goes with the line before it."""
        ts = normalize_ts(line[:40])
        if ts is None:
            return self._previous
        self._previous = self._decide(ts)
        if self._previous:
            self.count += 1
            if self.first is None:
                self.first = ts
            if self.last is None or ts > self.last:
                self.last, self.same = ts, 1
            elif ts == self.last:
                self.same += 1
        return self._previous

    def _decide(self, ts):
        if self.cutoff is not None and ts > self.cutoff:
            self.deferred += 1
            return False
        if self.old_last is None or ts > self.old_last:
            return True
        if ts < self.old_last:
            return False
        self.seen_at_old_last += 1
        return self.seen_at_old_last > self.old_same

    @property
    def gap(self):
        """True when new lines came but not the line at the old position, which Docker returns while it
        keeps it: it rotated away, and lines after it may have gone with it."""
        return bool(self.old_last and self.count and not self.seen_at_old_last)

    @property
    def position(self):
        return None if self.last is None else {'last': self.last, 'same': self.same}


def since_for(position):
    """``since`` to ask Docker for (whole seconds, so lines of the position's second come back
    and ``NewLines`` skips those already archived), or None for everything."""
    if not position or not position.get('last'):
        return None
    return max(ts_seconds(position['last']), 1)


def check_container_name(name):
    name = str(name).lstrip('/')
    if not _CONTAINER_NAME_RE.match(name):
        raise LogArchiveError('container name %r cannot name an archive directory' % (name,))
    return name


def archive_name(first_ts, container_id, encrypted):
    """File name of the archive whose first line has time ``first_ts``.

    A run killed after writing an archive but before saving the position reads again from
    the same position: the archive gets the same name and is replaced by one holding the
    same lines and any newer ones, so nothing is duplicated.
    """
    compact = first_ts[:19].replace('-', '').replace(':', '') + first_ts[19:]
    return '%s-%s%s%s' % (compact, container_id[:12], ARCHIVE_SUFFIX, ENCRYPTED_SUFFIX if encrypted else '')


def is_archive(name):
    return bool(ARCHIVE_RE.match(name))


def is_leftover(name):
    """A temporary file of an archive write that was killed (atomic_write's ``.<name>.*.tmp``)."""
    return name.startswith('.') and name.endswith('.tmp') and is_archive(name[1:].rsplit('.', 2)[0])


def retention(names, keep):
    """``(kept, removed)`` archive file names of one container, newest first; other names are ignored."""
    if keep < 1:
        raise LogArchiveError('keep must be at least 1 (the archive just written), not %d' % keep)
    newest_first = sorted((name for name in names if is_archive(name)), reverse=True)
    return newest_first[:keep], newest_first[keep:]


def empty_positions():
    return {'schema': POSITIONS_SCHEMA, 'containers': {}}


def parse_positions(text, path):
    """The positions file's content, checked; LogArchiveError naming the file and the fix."""
    fix = ('; fix or delete %s (deleted, the next run archives every line Docker still keeps, '
           'including lines already archived)' % path)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LogArchiveError('%s is not valid JSON (%s)%s' % (path, exc, fix))
    if not isinstance(data, dict) or data.get('schema') != POSITIONS_SCHEMA \
            or not isinstance(data.get('containers'), dict):
        raise LogArchiveError('%s is not a positions file of schema %d%s' % (path, POSITIONS_SCHEMA, fix))
    for cid, entry in data['containers'].items():
        if not isinstance(entry, dict) or normalize_ts(entry.get('last') or '') != entry.get('last') \
                or not isinstance(entry.get('same'), int) or entry['same'] < 1:
            raise LogArchiveError('%s: the position of container %s is invalid%s' % (path, cid, fix))
    return data


def read_positions(path):
    try:
        with open(path, 'r') as handle:
            return parse_positions(handle.read(), path)
    except (IOError, OSError) as exc:
        if not os.path.exists(path):
            return empty_positions()
        raise LogArchiveError('cannot read %s: %s' % (path, exc))


def dump_positions(positions):
    return json.dumps(positions, indent=1, sort_keys=True) + '\n'


def next_positions(previous, current, present_ids):
    """Positions to save: ``current`` (``{id: {name, last, same}}``) over ``previous``, without
    containers that no longer exist (their logs went with them)."""
    containers = dict((cid, entry) for cid, entry in previous['containers'].items() if cid in present_ids)
    containers.update(current)
    return {'schema': POSITIONS_SCHEMA, 'containers': containers}


def diff_text(positions):
    """One line per container, for the diff: ``<name> <id12> <last time> (<same>)``."""
    lines = sorted('%s %s %s (%d)' % (entry.get('name'), cid[:12], entry['last'], entry['same'])
                   for cid, entry in positions['containers'].items())
    return '\n'.join(lines) + ('\n' if lines else '')
