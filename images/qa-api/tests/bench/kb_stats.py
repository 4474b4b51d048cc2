"""The figures of `make bench-kb` (tests/bench/kb_bench.py), as pure functions.

Every round measures both pipelines back to back, so a ratio is taken within a round
(paired) and the rounds give its spread: a machine that slows down for a while slows
both sides of the same round instead of one side's whole series.
"""

import json
import math
import statistics

SIDES = ("ours", "seed")
TIMINGS_PREFIX = "timings "


def summary(values, digits=3):
    """{"n", "median", "min", "max", "spread"} of repeated measurements; spread is
    (max - min) / median, the relative width of what the rounds saw."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no measurements to summarize: run at least one round (--rounds 1)")
    if any(math.isnan(v) for v in values):
        raise ValueError("a measurement is NaN: %r" % values)
    median = statistics.median(values)
    spread = (max(values) - min(values)) / median if median else None
    return {"n": len(values), "median": round(median, digits), "min": round(min(values), digits),
            "max": round(max(values), digits),
            "spread": None if spread is None else round(spread, 3)}


def paired_ratios(seed, ours):
    """seed / ours of each round: > 1 means ours took less (time, memory) than the seed."""
    seed, ours = list(seed), list(ours)
    if len(seed) != len(ours):
        raise ValueError("ratios need one pair per round: %d seed and %d ours measurements"
                         % (len(seed), len(ours)))
    if any(o <= 0 for o in ours):
        raise ValueError("ours has a measurement <= 0 (%r): nothing to divide by" % ours)
    return [s / o for s, o in zip(seed, ours)]


def round_order(index):
    """Which pipeline runs first in round `index`: ours on even rounds, the seed on odd ones,
    so neither always finds the page cache and the CPU as the other left them."""
    return SIDES if index % 2 == 0 else SIDES[::-1]


def percentile(values, share):
    """Nearest-rank percentile (share 0 < share <= 1) of the values; the median is share 0.5
    only for an odd count, use statistics.median for medians."""
    if not values:
        raise ValueError("no values")
    if not 0 < share <= 1:
        raise ValueError("share must be in (0, 1], got %r" % share)
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency(values_ms):
    """{"median", "p95", "n"} of per-query latencies in milliseconds."""
    return {"n": len(values_ms), "median": round(statistics.median(values_ms), 3),
            "p95": round(percentile(values_ms, 0.95), 3)}


def parse_timings(stderr):
    """The builder's phase timings ({"phase": seconds}) from its last "timings {...}" log
    line, or None when it printed none (a builder older than the line)."""
    found = None
    for line in stderr.splitlines():
        if line.startswith(TIMINGS_PREFIX):
            try:
                value = json.loads(line[len(TIMINGS_PREFIX):])
            except ValueError:
                continue
            if isinstance(value, dict):
                found = value
    return found


def median_phases(runs):
    """{phase: median seconds} over the runs' phase dicts (a phase missing in a run is left
    out of that run only)."""
    phases = {}
    for run in runs:
        for phase, seconds in (run or {}).items():
            phases.setdefault(phase, []).append(seconds)
    return {phase: round(statistics.median(values), 3) for phase, values in phases.items()}


def compare(seed, ours):
    """The summary of the paired ratios of two per-round series."""
    return summary(paired_ratios(seed, ours))


def same_model(embedding, name, digest):
    """{"name", "backend", "digest"} of a build's manifest "embedding" when it is the seed's model
    (the given name and content digest, sentence-transformers); ValueError naming what differs:
    a ratio between two models measures the models, not the pipelines."""
    found = {key: (embedding or {}).get(key) for key in ("name", "backend", "digest")}
    expected = {"name": name, "backend": "sentence-transformers", "digest": digest}
    wrong = ["%s %r (expected %r)" % (key, found[key], expected[key])
             for key in sorted(expected) if found[key] != expected[key]]
    if wrong:
        raise ValueError("our build did not embed with the seed's model: %s; pass --model the "
                         "sentence-transformers folder both sides use" % ", ".join(wrong))
    return found


def pairs(seed, ours):
    """(seed, ours) of the rounds where both were measured (None: not run that round)."""
    kept = [(s, o) for s, o in zip(seed, ours) if s is not None and o is not None]
    return [s for s, _o in kept], [o for _s, o in kept]


def load_average(path="/proc/loadavg"):
    """The 1-minute load average (the host's: /proc/loadavg is not namespaced), None if unreadable."""
    try:
        with open(path, encoding="ascii") as handle:
            return float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
