"""The pure parts of make bench-hardening (tests/bench/hardening_parts.py), without Docker."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
from hardening_parts import (DEFINITION_KEYS, BenchError, hardening_of, hardening_problems,  # noqa: E402
                             metric_value, order_of_round, percentile, ratios, run_args_without_hardening,
                             stack_figures, stack_vars)

IMAGE_CONFIG = {"Env": ["PATH=/usr/bin"], "Cmd": ["nginx"], "Entrypoint": ["/usr/local/bin/gateway-run"],
                "User": "", "Labels": {"org.opencontainers.image.title": "gateway"}}


def inspect(**host):
    """A docker inspect of a hardened container, as the roles create them."""
    return {
        "Name": "/hbench-prev-redis",
        "Config": {"Image": "llmops/redis:1", "Env": ["PATH=/usr/bin", "QA_COLOR=blue"],
                   "Cmd": ["redis-server", "/etc/redis.conf"], "Entrypoint": ["/usr/local/bin/gateway-run"],
                   "User": "redis", "Labels": {"org.opencontainers.image.title": "gateway", "llmops.service": "s"},
                   "StopSignal": "SIGQUIT"},
        "HostConfig": dict({"NetworkMode": "hbench-net", "ReadonlyRootfs": True, "CapDrop": ["ALL"],
                            "CapAdd": ["CHOWN"], "SecurityOpt": ["no-new-privileges:true"], "Memory": 536870912,
                            "PidsLimit": 128, "NanoCpus": 1000000000, "Tmpfs": {"/tmp": "size=16m"},
                            "Init": True}, **host),
        "Mounts": [{"Type": "bind", "Source": "/s/redis.conf", "Destination": "/etc/redis.conf", "RW": False},
                   {"Type": "volume", "Name": "hbench-prev-redis-data", "Destination": "/data", "RW": True},
                   {"Type": "tmpfs", "Destination": "/tmp"}],
    }


def test_the_rerun_keeps_the_container_but_drops_every_hardening_setting():
    args = run_args_without_hardening(inspect(), IMAGE_CONFIG)
    text = " ".join(args)
    assert args[:6] == ["run", "-d", "--name", "hbench-prev-redis", "--network", "hbench-net"]
    assert "--mount type=bind,source=/s/redis.conf,target=/etc/redis.conf,readonly" in text
    assert "--mount type=volume,source=hbench-prev-redis-data,target=/data" in text
    assert "--env QA_COLOR=blue" in text and "PATH=" not in text  # the image's own env is not repeated
    assert "--label llmops.service=s" in text and "image.title" not in text
    assert "--init" in args and "--user redis" in text and "--stop-signal SIGQUIT" in text
    assert args[-3:] == ["llmops/redis:1", "redis-server", "/etc/redis.conf"]
    for flag in ("--read-only", "--tmpfs", "--cap-drop", "--cap-add", "--security-opt", "--memory",
                 "--pids-limit", "--cpus", "type=tmpfs"):
        assert flag not in text


def test_the_image_command_is_not_repeated_and_a_new_entrypoint_keeps_the_command():
    info = inspect()
    info["Config"]["Cmd"] = ["nginx"]
    assert run_args_without_hardening(info, IMAGE_CONFIG)[-1] == "llmops/redis:1"
    info["Config"]["Entrypoint"] = ["redis-server", "--port", "6379"]
    args = run_args_without_hardening(info, IMAGE_CONFIG)
    assert args[args.index("--entrypoint") + 1] == "redis-server"
    assert args[-4:] == ["llmops/redis:1", "--port", "6379", "nginx"]


def test_a_container_that_publishes_ports_is_refused_with_the_reason():
    with pytest.raises(BenchError, match="publishes ports"):
        run_args_without_hardening(inspect(PortBindings={"443/tcp": [{"HostPort": "8443"}]}), IMAGE_CONFIG)


def test_only_previous_has_the_switches_off_and_hardened_lets_the_bench_key_through():
    hardened = stack_vars("hardened", "hbench-hard", 1, 2, "pw", "k" * 20)
    previous = stack_vars("previous", "hbench-prev", 3, 4, "pw", "k" * 20)
    assert len(hardened["qa_service_sensitive_words"]) > 1000 and "洗钱" in hardened["qa_service_sensitive_words"]
    assert hardened["gateway_key_concurrency"] >= 500 and "qa_service_pii_redact" not in hardened
    assert previous["qa_service_pii_redact"] is False and previous["qa_service_sensitive_words"] == []
    assert previous["gateway_key_concurrency"] == 0 and previous["gateway_cpus"] == 0
    assert previous["gateway_api_keys"] == hardened["gateway_api_keys"]
    assert hardened["hbench_unharden_keys"] == [] and "read_only" in previous["hbench_unharden_keys"]
    with pytest.raises(BenchError, match="hardened or previous"):
        stack_vars("naive", "x", 1, 2, "pw", "k")


def test_figures_and_ratios():
    assert percentile([], 99) is None
    assert percentile([0.3, 0.1, 0.2], 50) == 0.2 and percentile(list(range(1, 101)), 99) == 99
    rounds = [{"results": [(0.1, True, ""), (0.3, True, ""), (1.0, False, "stream ended")], "wall": 2.0, "misses": 0},
              {"results": [(0.2, True, "")], "wall": 2.0, "misses": 1}]
    figures = stack_figures(rounds)
    assert figures["requests"] == 4 and figures["failures"] == 1 and figures["throughput_rps"] == 0.8
    assert figures["latency_ms"] == {"p50": 200.0, "p99": 300.0, "max": 300.0}
    assert figures["cache_misses_during_load"] == 1 and figures["errors"] == ["stream ended"]
    slower = dict(figures, throughput_rps=0.4, latency_ms={"p50": 400.0, "p99": 600.0},
                  rounds=[dict(r, rps=r["rps"] / 2, p99_ms=r["p99_ms"] * 3) for r in figures["rounds"]])
    assert ratios(slower, figures) == {"throughput": 0.5, "p50": 2.0, "p99": 2.0, "throughput_by_round": [0.5, 0.5],
                                       "p99_by_round": [3.0, 3.0]}


def test_rounds_alternate_and_metrics_are_read():
    assert [order_of_round(i)[0] for i in range(3)] == ["hardened", "previous", "hardened"]
    text = "# HELP qa_cache_misses_total x\nqa_cache_misses_total 7.0\nqa_cache_misses_created 1.7e9\n"
    assert metric_value(text, "qa_cache_misses_total") == 7.0 and metric_value(text, "absent") == 0.0


def test_hardening_is_read_from_inspect_and_a_stack_that_is_not_what_it_claims_is_named():
    hardened = hardening_of(inspect())
    assert hardened == {"read_only": True, "cap_drop": ["ALL"], "no_new_privileges": True,
                        "memory": 536870912, "pids_limit": 128, "cpus": 1.0}
    bare = hardening_of(inspect(ReadonlyRootfs=False, CapDrop=None, CapAdd=None, SecurityOpt=None, Memory=0,
                                PidsLimit=None, NanoCpus=0))
    assert hardening_problems("hardened", {"a": hardened}) == [] and hardening_problems("previous", {"b": bare}) == []
    assert hardening_problems("previous", {"a": hardened})[0].startswith("a (previous)")
    assert hardening_problems("hardened", {"b": bare})[0].startswith("b (hardened)")


def test_the_qa_api_definition_keys_dropped_are_the_container_role_s_hardening_keys():
    role = (pathlib.Path(__file__).resolve().parents[2] / "roles" / "qa_service" / "tasks" / "define.yml").read_text()
    for key in DEFINITION_KEYS:
        assert ("%s:" % key) in role or key == "cap_add", key  # the qa-api adds no capability
