"""The pure parts of make bench-fleet (tests/bench/fleet_parts.py), without Docker."""
import json
import pathlib
import sys
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
from fleet_parts import (BenchError, after_module_start, audit_switch, drain_seconds, figures, other, parse_time, plan,  # noqa: E402
                         release_vars, summarize_config, switch_task, time_to_all, upstream_counts)

T0 = parse_time("2026-12-03T10:00:00Z")


def test_times_with_z_with_an_offset_and_the_json_callbacks_microseconds():
    assert parse_time("2026-12-03T10:00:01.500000Z") - T0 == pytest.approx(1.5)
    assert parse_time("2026-12-03T11:00:00+01:00") == T0
    with pytest.raises(BenchError, match="not a time: 'yesterday'"):
        parse_time("yesterday")


def test_time_to_100_is_the_first_answer_of_the_final_run_of_the_new_color():
    samples = [(T0 - 5, "blue"), (T0 + 1, "blue"), (T0 + 2.5, "green"), (T0 + 3, "blue"), (T0 + 3.5, "green"),
               (T0 + 4, "green")]
    # A green answer at +2.5 then blue again at +3 (an old connection, a second upstream): not yet 100 %.
    out = time_to_all(list(reversed(samples)), T0, "green")
    assert out == {"to_100_s": 3.5, "last_other_s": 3.0, "samples": 6}


def test_time_to_100_is_none_when_the_last_answer_is_still_the_old_color():
    out = time_to_all([(T0 + 1, "green"), (T0 + 2, "blue")], T0, "green")
    assert out["to_100_s"] is None and out["last_other_s"] == 2.0
    assert time_to_all([], T0, "green") == {"to_100_s": None, "last_other_s": None, "samples": 0}


def test_the_old_colors_last_answer_counts_only_after_the_switch_started():
    r = SimpleNamespace
    results = [r(ok=True, color="blue", end=T0 - 1), r(ok=True, color="blue", end=T0 + 12.25),
               r(ok=False, color="blue", end=T0 + 40), r(ok=True, color="green", end=T0 + 20)]
    assert drain_seconds(results, T0, "green") == 12.25
    assert drain_seconds(results[:1] + results[3:], T0, "green") == 0.0
    assert drain_seconds([r(ok=False, color="", end=T0)], T0, "green") is None


def play_output(switch_result, name="llmops.bluegreen.release : Send all traffic to green"):
    task = {"task": {"name": name, "duration": {"start": "2026-12-03T10:00:00.250000Z",
                                                "end": "2026-12-03T10:00:04.750000Z"}},
            "hosts": {"fbn-gw": switch_result}}
    skipped = {"task": {"name": "Send all traffic back to the stable color after a failure",
                        "duration": {"start": "2026-12-03T10:00:05Z", "end": "2026-12-03T10:00:05Z"}},
               "hosts": {"fbn-gw": {"skipped": True}}}
    return {"plays": [{"tasks": [task, skipped]}]}


def test_the_switch_task_gives_its_timestamps_and_the_modules_phases():
    out = switch_task(play_output({"changed": True, "active": "green", "all_target_seconds": 0.8,
                                   "seconds": {"health": 1.0, "reload": 0.5, "verify": 2.0, "total": 4.1}}))
    assert out["start"] == T0 + 0.25 and out["end"] == T0 + 4.75
    assert out["seconds"]["total"] == 4.1 and out["to"] == "green" and out["all_target_seconds"] == 0.8


def test_a_play_without_the_switch_or_with_a_failed_one_is_a_clear_error():
    with pytest.raises(BenchError, match="the switch failed: health gate: not ready"):
        switch_task(play_output({"failed": True, "msg": "health gate: not ready after 120 s"}))
    with pytest.raises(BenchError, match="did not switch"):
        switch_task(play_output({"skipped": True}))
    with pytest.raises(BenchError, match="did not switch"):
        switch_task({"plays": []})


def audit_line(time, action="switch", result="ok", to="green", duration=3.25):
    return json.dumps({"time": time, "action": action, "result": result, "from": "blue", "to": to,
                       "duration_s": duration})


def test_the_audit_gives_the_last_successful_switch_since_the_release_began():
    lines = [audit_line("2026-12-03T09:00:00Z", to="blue"), audit_line("2026-12-03T10:00:10Z", result="failed: x"),
             "", audit_line("2026-12-03T10:00:20Z"), audit_line("2026-12-03T10:00:30Z", action="rollback", to="blue")]
    found = audit_switch(lines, T0)
    assert found["to"] == "green" and found["end"] == T0 + 20 and found["start"] == T0 + 16.75
    assert audit_switch(lines[:1], T0) is None
    with pytest.raises(BenchError, match="audit.log line is not JSON"):
        audit_switch(["garbage"], T0)


def test_upstream_counts_read_the_gateways_json_log_in_the_window():
    rec = {"time": "2026-12-03T10:00:05+00:00", "path": "/v1/chat/completions", "upstream_addr": "10.214.0.21:8100"}
    lines = ["nginx: [notice] signal process started", json.dumps(rec),
             json.dumps(dict(rec, upstream_addr="10.214.0.21:8100, 10.214.0.22:8100")),
             json.dumps(dict(rec, path="/health", upstream_addr="10.214.0.11:8100")),
             json.dumps(dict(rec, time="2026-12-03T09:00:00+00:00", upstream_addr="10.214.0.11:8100"))]
    assert upstream_counts(lines, T0, T0 + 60) == {"10.214.0.21:8100": 1, "10.214.0.22:8100": 1}


def test_each_release_changes_the_spec_and_releases_only():
    assert release_vars(0) == {"deploy_platform": False, "qa_service_cache_ttl_single_turn": 86401}
    assert release_vars(3)["qa_service_cache_ttl_single_turn"] == 86404
    with pytest.raises(BenchError, match=">= 0"):
        release_vars(-1)


def test_the_plan_runs_one_server_per_color_first_then_two():
    assert plan(2, {1: "h1", 2: "h2"}) == [(1, "h1"), (1, "h1"), (2, "h2"), (2, "h2")]
    with pytest.raises(BenchError, match="--per-config 2"):
        plan(0, {1: "h1", 2: "h2"})
    with pytest.raises(BenchError, match=r"no inventory for \[2\]"):
        plan(1, {1: "h1"})
    assert other("blue") == "green"
    with pytest.raises(BenchError, match="blue or green"):
        other("red")


def test_figures_and_a_configurations_summary_count_only_successful_releases():
    assert figures([3, None, 1, 2]) == {"n": 3, "median": 2.0, "min": 1.0, "max": 3.0}
    assert figures([]) == {"n": 0, "median": None, "min": None, "max": None}
    load = {"requests_total": 4, "requests_failed": 1, "streams_truncated": 0}
    good = {"ok": True, "from": "blue", "to": "green", "switch": {"seconds": {"total": 4.0, "health": 1.0}, "task_s": 9.5},
            "probe": {"to_100_s": 6.0}, "load_colors": {"to_100_s": 20.0}, "drain_s": 9.0, "release_s": 300.0,
            "load": load, "loadavg_1m": [3.5, 4.5]}
    bad = {"ok": False, "from": "green", "to": "blue", "load": load, "loadavg_1m": [6.0]}
    out = summarize_config([good, bad])
    assert out["releases"] == 2 and out["releases_ok"] == 1 and out["directions"] == ["blue->green", "green->blue"]
    assert out["switch_s"]["median"] == 4.0 and out["to_100_probe_s"]["n"] == 1
    assert out["requests"] == 8 and out["requests_failed"] == 2
    assert out["load_average_1m"] == {"n": 3, "median": 4.5, "min": 3.5, "max": 6.0}
    # 5.5 s of the task were Ansible starting the module: 6.0 - 5.5 after the module started.
    assert out["to_100_probe_after_module_start_s"]["median"] == 0.5 and out["switch_task_s"]["median"] == 9.5
    assert after_module_start(bad) is None
    assert after_module_start(dict(good, probe={"to_100_s": None})) is None
