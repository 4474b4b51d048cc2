"""The pure parts of make bench-fleet (tests/bench/fleet_bench.py): no Docker, no network.

Times are epoch seconds of this machine's clock (the controller's): the load's requests, the
health probes and the play's task timestamps (ansible.posix.json) all come from it, so they
compare without any clock offset. The audit log's times (second precision) are a cross-check.
"""
import datetime
import json
import statistics

# The release role's full switch (roles/release/tasks/switch.yml); its rescue task is
# "Send all traffic back to ...", which this prefix does not match.
SWITCH_TASK_PREFIX = "Send all traffic to "
# The spec change of each release: the single-turn cache TTL, as tests/fleet does (one second more per release).
BASE_TTL = 86400


class BenchError(ValueError):
    """A bench input or a play output that cannot give the figure; the message says what and the fix."""


def parse_time(value):
    """Epoch seconds of an ISO 8601 time ("2026-12-03T10:00:00.123456Z" or with an offset)."""
    if not isinstance(value, str) or not value:
        raise BenchError("not a time: %r (expected ISO 8601, e.g. 2026-12-03T10:00:00Z)" % (value,))
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise BenchError("not a time: %r (expected ISO 8601, e.g. 2026-12-03T10:00:00Z)" % (value,))
    if moment.tzinfo is None:  # the json callback's utcnow() has no offset but a Z; a bare one is UTC too
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def release_vars(index):
    """Extra vars of release ``index``: a release only, with a spec change no earlier release had."""
    if not isinstance(index, int) or index < 0:
        raise BenchError("release index must be an integer >= 0, got %r" % (index,))
    return {"deploy_platform": False, "qa_service_cache_ttl_single_turn": BASE_TTL + 1 + index}


def plan(per_config, inventories):
    """The releases in order: ``per_config`` with 1 server per color, then as many with 2.

    ``inventories``: {1: path, 2: path}. Returns [(servers, inventory)]; the colors alternate by
    themselves (each release goes to the idle color), so 2 per configuration gives one of each direction.
    """
    if not isinstance(per_config, int) or per_config < 1:
        raise BenchError("releases per configuration must be >= 1, got %r (use --per-config 2: one each way)"
                         % (per_config,))
    missing = [n for n in (1, 2) if not inventories.get(n)]
    if missing:
        raise BenchError("no inventory for %s server(s) per color: give inventories {1: ..., 2: ...}" % missing)
    return [(1, inventories[1])] * per_config + [(2, inventories[2])] * per_config


def other(color):
    if color not in ("blue", "green"):
        raise BenchError("color must be blue or green, got %r" % (color,))
    return "green" if color == "blue" else "blue"


def switch_task(out):
    """The release's full switch in an ansible.posix.json play output.

    Returns {start, end} (epoch, the callback's task timestamps), ``seconds`` (the module's own
    phases: health, reload, verify, total), ``to`` (the active color after it) and
    ``all_target_seconds`` (the module's verification: reload until its probes all reached the target).
    """
    for play in out.get("plays", []):
        for task in play.get("tasks", []):
            name = task["task"]["name"].split(" : ")[-1]
            if not name.startswith(SWITCH_TASK_PREFIX):
                continue
            for res in task["hosts"].values():
                if res.get("skipped"):
                    continue
                if res.get("failed"):
                    raise BenchError("the switch failed: %s" % res.get("msg", "no message"))
                duration = task["task"]["duration"]
                return {"start": parse_time(duration["start"]), "end": parse_time(duration["end"]),
                        "seconds": res.get("seconds") or {}, "to": res.get("active"),
                        "all_target_seconds": res.get("all_target_seconds")}
    raise BenchError("the play output has no task starting %r that ran: the release did not switch (nothing "
                     "changed in the spec, or it failed before; see the play's failure)" % SWITCH_TASK_PREFIX)


def audit_switch(lines, since):
    """The last successful switch in audit.log lines written at or after ``since`` (epoch), or None.

    Returns {to, from, end, duration_s, start}: ``end`` is the record's time (second precision),
    ``start`` = end - duration_s.
    """
    found = None
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise BenchError("audit.log line is not JSON: %r (the file is JSON lines)" % line[:120])
        if rec.get("action") != "switch" or rec.get("result") != "ok":
            continue
        end = parse_time(rec["time"])
        if end + 1 < since:  # second precision: a record of the same second counts
            continue
        duration = float(rec.get("duration_s") or 0.0)
        found = {"to": rec.get("to"), "from": rec.get("from"), "end": end, "duration_s": duration,
                 "start": end - duration}
    return found


def time_to_all(samples, switch_start, color):
    """How long after ``switch_start`` every answer came from ``color``.

    ``samples``: (t, color) of answered requests, t = when each was sent. The answer is the send
    time of the first sample of the final run of ``color`` samples, minus ``switch_start``
    (``to_100_s``); ``last_other_s`` is the last sample of another color (the figure lies between the two:
    the gap is the sampling's resolution). ``to_100_s`` is None when the last sample is not ``color``.
    """
    ordered = sorted((t, c) for t, c in samples)
    last_other = None
    for i, (t, c) in enumerate(ordered):
        if c != color:
            last_other = i
    first = 0 if last_other is None else last_other + 1
    out = {"to_100_s": None, "last_other_s": None, "samples": len(ordered)}
    if last_other is not None:
        out["last_other_s"] = round(ordered[last_other][0] - switch_start, 3)
    if first < len(ordered):
        out["to_100_s"] = round(ordered[first][0] - switch_start, 3)
    return out


def drain_seconds(results, switch_start, color):
    """Seconds from ``switch_start`` until the last answer of another color came back (0 if none after it).

    ``results``: objects with ``ok``, ``color`` and ``end`` (loadgen.Result); None without answers.
    """
    answered = [r for r in results if r.ok and r.color]
    if not answered:
        return None
    late = [r.end for r in answered if r.color != color and r.end >= switch_start]
    return round(max(late) - switch_start, 3) if late else 0.0


def figures(values):
    """{n, median, min, max} of the values that are not None (n 0 and None figures when none)."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {"n": len(xs), "median": round(statistics.median(xs), 3), "min": round(min(xs), 3),
            "max": round(max(xs), 3)}


def upstream_counts(lines, since, until, path_prefix="/v1/"):
    """Requests per upstream address in the gateway's JSON access log between ``since`` and ``until`` (epoch).

    Lines that are not JSON (nginx's own notices on the same stdout) are skipped. A retried request
    names several addresses ("a, b"): the last one answered.
    """
    counts = {}
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not str(rec.get("path", "")).startswith(path_prefix) or not rec.get("upstream_addr"):
            continue
        if not since <= parse_time(rec["time"]) <= until:
            continue
        addr = rec["upstream_addr"].split(",")[-1].strip()
        counts[addr] = counts.get(addr, 0) + 1
    return dict(sorted(counts.items()))


def after_module_start(record):
    """``to_100_probe_s`` counted from the module's own start instead of the task's.

    The task's start also holds Ansible's overhead of starting the module on the gateway host
    (seconds on the loaded machine); the module started at the latest at task end - its own total.
    The result is then a lower bound (the task ends a little after the module). None without the figures.
    """
    try:
        to_100 = record["probe"]["to_100_s"]
        overhead = record["switch"]["task_s"] - record["switch"]["seconds"]["total"]
    except (KeyError, TypeError):
        return None
    return None if to_100 is None else round(to_100 - overhead, 3)


def summarize_config(releases):
    """Figures of one configuration from its releases' records (fleet_bench.one_release)."""
    ok = [r for r in releases if r.get("ok")]
    return {
        "releases": len(releases), "releases_ok": len(ok),
        "directions": ["%s->%s" % (r["from"], r["to"]) for r in releases],
        "switch_s": figures([r["switch"]["seconds"].get("total") for r in ok]),
        "switch_health_gate_s": figures([r["switch"]["seconds"].get("health") for r in ok]),
        "switch_task_s": figures([r["switch"].get("task_s") for r in ok]),
        "to_100_probe_s": figures([r["probe"]["to_100_s"] for r in ok]),
        "to_100_probe_after_module_start_s": figures([after_module_start(r) for r in ok]),
        "to_100_load_s": figures([r["load_colors"]["to_100_s"] for r in ok]),
        "old_color_drained_s": figures([r["drain_s"] for r in ok]),
        "release_s": figures([r["release_s"] for r in ok]),
        "requests": sum(r["load"]["requests_total"] for r in releases),
        "requests_failed": sum(r["load"]["requests_failed"] for r in releases),
        "streams_truncated": sum(r["load"]["streams_truncated"] for r in releases),
        "load_average_1m": figures([x for r in releases for x in r["loadavg_1m"]]),
    }
