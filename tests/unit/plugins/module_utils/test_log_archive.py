# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Positions, new lines, archive names and retention of log_archive, without Docker."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import random

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils._log_archive import (
    LogArchiveError, NewLines, archive_name, check_container_name, empty_positions, is_archive, is_leftover,
    iter_lines, next_positions, normalize_ts, parse_positions, read_positions, retention, since_for, ts_from_epoch,
    ts_seconds)
from ansible_collections.llmops.bluegreen.plugins.module_utils._names import names


def test_times_are_normalized_to_fixed_width_utc():
    assert normalize_ts(b'2026-12-02T21:30:26.123456789Z hello') == '2026-12-02T21:30:26.123456789Z'
    # Trailing zeros trimmed, as some Docker versions print: still sorts before .123456789.
    assert normalize_ts('2026-12-02T21:30:26.12345Z x') == '2026-12-02T21:30:26.123450000Z'
    assert normalize_ts(b'2026-12-02T21:30:26Z') == '2026-12-02T21:30:26.000000000Z'
    assert normalize_ts(b'2026-12-03T05:30:26.5+08:00 x') == '2026-12-02T21:30:26.500000000Z'
    assert normalize_ts(b'2026-12-02T21:30:26.5-01:00 x') == '2026-12-02T22:30:26.500000000Z'
    for bad in (b'no time here', b'2026-13-02T21:30:26Z x', b'2026-12-02 21:30:26Z x', b''):
        assert normalize_ts(bad) is None
    assert normalize_ts(b'2026-12-02T21:30:26.12345Z') > normalize_ts(b'2026-12-02T21:30:26.1234Z')


def test_epoch_conversions():
    assert ts_seconds('2026-12-02T21:30:26.999999999Z') == ts_seconds('2026-12-02T21:30:26.000000000Z')
    assert ts_from_epoch(ts_seconds('2026-12-02T21:30:26.000000000Z') + 0.25) == '2026-12-02T21:30:26.250000000Z'
    assert since_for(None) is None and since_for({}) is None
    assert since_for({'last': '2026-12-02T21:30:26.900000000Z', 'same': 1}) == ts_seconds('2026-12-02T21:30:26.0Z')


def test_lines_of_chunks_cut_anywhere():
    data = b'a 1\nbb 2\n\nccc 3'
    for cut in range(len(data) + 1):
        assert list(iter_lines([data[:cut], data[cut:]])) == [b'a 1', b'bb 2', b'', b'ccc 3']
    assert list(iter_lines([])) == []


def line(second, text, fraction='000000000'):
    return ('2026-12-02T21:30:%02d.%sZ %s' % (second, fraction, text)).encode()


def test_lines_at_the_position_time_are_skipped_by_count():
    position = {'last': '2026-12-02T21:30:05.000000000Z', 'same': 2}
    selector = NewLines(position, cutoff=None)
    fed = [line(4, 'old'), line(5, 'dup-a'), line(5, 'dup-b'), line(5, 'new-same-time'), line(6, 'new')]
    assert [selector.feed(item) for item in fed] == [False, False, False, True, True]
    assert selector.count == 2 and selector.first == '2026-12-02T21:30:05.000000000Z' and not selector.gap
    assert selector.position == {'last': '2026-12-02T21:30:06.000000000Z', 'same': 1}


def test_the_position_counts_lines_at_its_own_time():
    selector = NewLines({'last': '2026-12-02T21:30:05.000000000Z', 'same': 1}, cutoff=None)
    for item in (line(5, 'seen'), line(5, 'new-a'), line(5, 'new-b')):
        selector.feed(item)
    assert selector.position == {'last': '2026-12-02T21:30:05.000000000Z', 'same': 3}


def test_a_position_line_gone_from_docker_is_a_gap():
    position = {'last': '2026-12-02T21:30:05.000000000Z', 'same': 1}
    rotated = NewLines(position, cutoff=None)
    for item in (line(5, 'later in the same second', '500000000'), line(7, 'new')):
        rotated.feed(item)
    assert rotated.count == 2 and rotated.gap
    quiet = NewLines(position, cutoff=None)
    quiet.feed(line(5, 'the position line'))
    assert not quiet.gap and quiet.count == 0
    assert not NewLines(None, None).gap


def test_lines_after_the_cutoff_wait_and_a_continuation_follows_its_line():
    selector = NewLines(None, cutoff='2026-12-02T21:30:05.000000000Z')
    results = [selector.feed(item) for item in (line(4, 'a'), b'rest of a long message', line(6, 'late'),
                                                b'rest of late', line(5, 'at the cutoff'))]
    assert results == [True, True, False, False, True]
    assert selector.deferred == 1 and selector.count == 2
    assert selector.position == {'last': '2026-12-02T21:30:05.000000000Z', 'same': 1}
    assert NewLines(None, None).position is None


def archive_runs(log, reads):
    """Archive ``log`` (growing) as successive runs would: each run sees the first ``n`` lines and asks
    from the position's whole second, as Docker's ``since`` does."""
    position, archived = None, []
    for count in reads:
        since = since_for(position)
        visible = [item for item in log[:count] if since is None or ts_seconds(normalize_ts(item)) >= since]
        selector = NewLines(position, cutoff=None)
        archived += [item for item in visible if selector.feed(item)]
        position = selector.position or position
    return archived


def test_successive_runs_archive_every_line_once_even_with_shared_times():
    rng = random.Random(9)
    for dummy in range(50):
        log, second, fraction = [], 0, 0
        for index in range(60):
            # Many lines share a second or the exact time: the hard case for a position.
            if rng.random() < 0.3:
                second, fraction = second + rng.choice((0, 1)), rng.choice((0, fraction))
            log.append(line(second, 'line-%d' % index, '%09d' % fraction))
        reads = sorted(rng.sample(range(len(log) + 1), 6)) + [len(log)]
        assert archive_runs(log, reads) == log


def test_archive_names_sort_by_time_and_are_recognized():
    first = archive_name('2026-12-02T21:30:26.000000001Z', 'ab' * 32, encrypted=True)
    assert first == '20261202T213026.000000001Z-abababababab.log.gz.p7m'
    later = archive_name('2026-12-02T21:30:26.100000000Z', 'cd' * 32, encrypted=False)
    assert later.endswith('.log.gz') and later > first
    assert is_archive(first) and is_archive(later)
    for other in ('positions.json', 'notes.txt', first + '.bak', '.lock'):
        assert not is_archive(other)
    assert is_leftover('.%s.k2j_x9ab.tmp' % first)
    assert not is_leftover('.notes.txt.k2j_x9ab.tmp') and not is_leftover(first)


def test_retention_keeps_the_newest_archives_only():
    names_ = [archive_name('2026-12-%02dT00:00:00.000000000Z' % day, 'ab' * 32, True) for day in range(1, 6)]
    kept, removed = retention(names_ + ['README', 'positions.json'], keep=2)
    assert kept == [names_[4], names_[3]] and removed == [names_[2], names_[1], names_[0]]
    assert retention(names_, keep=10) == (sorted(names_, reverse=True), [])
    with pytest.raises(LogArchiveError, match='keep must be at least 1'):
        retention(names_, keep=0)


def test_container_names_must_be_directory_names():
    assert check_container_name('/qa-gateway') == 'qa-gateway'
    for bad in ('../etc', 'a/b', '.hidden', ''):
        with pytest.raises(LogArchiveError):
            check_container_name(bad)


def test_positions_file_is_checked_and_names_the_fix(tmp_path):
    path = str(tmp_path / 'positions.json')
    assert read_positions(path) == empty_positions()
    good = '{"schema": 1, "containers": {"abc": {"name": "x", "last": "2026-12-02T21:30:26.000000000Z", "same": 1}}}'
    assert parse_positions(good, path)['containers']['abc']['same'] == 1
    for bad in ('{', '[]', '{"schema": 2, "containers": {}}',
                '{"schema": 1, "containers": {"abc": {"last": "yesterday", "same": 1}}}',
                '{"schema": 1, "containers": {"abc": {"last": "2026-12-02T21:30:26.000000000Z", "same": 0}}}'):
        with pytest.raises(LogArchiveError, match='delete %s' % path):
            parse_positions(bad, path)


def test_positions_of_removed_containers_are_dropped():
    previous = {'schema': 1, 'containers': {'gone': {'last': 'a', 'same': 1}, 'kept': {'last': 'b', 'same': 1},
                                            'moved': {'last': 'c', 'same': 1}}}
    after = next_positions(previous, {'moved': {'last': 'd', 'same': 2}}, {'kept', 'moved'})
    assert after['containers'] == {'kept': {'last': 'b', 'same': 1}, 'moved': {'last': 'd', 'same': 2}}
    assert previous['containers']['moved']['last'] == 'c'


def test_the_archive_paths_come_from_the_names():
    paths = names('qa', '/var/lib/llmops')
    assert paths['logs_dir'] == '/var/lib/llmops/qa/logs'
    assert paths['log_positions'] == '/var/lib/llmops/qa/logs/positions.json'
