"""Pure parts of make bench-hardening (tests/bench/hardening_bench.py), tested without Docker
in tests/unit/test_hardening_bench.py: what each stack is given, how a container is run
again without its hardening, and the figures.
"""
import math
import random

# What "previous" turns off where the hardening is a role variable. Everything else (images,
# TLS certificate and protocols, API-key check, KB, model, Redis settings) is the same.
PREVIOUS_SWITCHES = {
    # gateway: no per-key or per-address limits, no HSTS, the body limit before hardening, no container limits
    "gateway_key_rate_limit_rps": 0, "gateway_key_concurrency": 0,
    "gateway_rate_limit_rps": 0, "gateway_address_concurrency": 0,
    "gateway_hsts_max_age": 0, "gateway_client_max_body_size": "10m",
    "gateway_memory": "0", "gateway_pids_limit": 0, "gateway_cpus": 0,
    # redis and qa-api: no container limits
    "redis_memory_limit": "0", "redis_pids_limit": 0, "redis_cpus": 0,
    "qa_service_memory": "0", "qa_service_pids_limit": 0, "qa_service_cpus": 0,
    # qa-api: PII redaction, sensitive-word filter and per-key generation limit off
    "qa_service_pii_redact": False, "qa_service_sensitive_words": [],
    "qa_service_extra_env": {"QA_KEY_CONCURRENCY": "0"},
}

# Hardened: the role defaults, except per-key limits that let the bench's one key through.
HARDENED_SWITCHES = {
    "gateway_key_rate_limit_rps": 100000, "gateway_key_rate_limit_burst": 100000,
    "gateway_key_concurrency": 1000,
}

# The hardening of a container is not a role variable: the previous stack runs the qa-api's
# definition (container role) without these keys, and Redis and the gateway (whose roles
# spell it in YAML) again with run_args_without_hardening.
DEFINITION_KEYS = ["read_only", "tmpfs", "cap_drop", "cap_add", "security_opts", "memory", "pids_limit", "cpus"]


class BenchError(Exception):
    """A bench step that cannot go on; the message names the problem and the fix."""


def sensitive_words(count=1000, seed=7):
    """The production example's words plus ``count`` synthetic ones (a realistic list size)."""
    rng = random.Random(seed)
    words = {"内幕交易", "洗钱", "insider trading"}
    cjk = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    while len(words) < count + 3:
        if rng.random() < 0.6:
            words.add("".join(rng.choice(cjk) for dummy in range(rng.randint(2, 5))))
        else:
            words.add("zz" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for dummy in range(rng.randint(4, 10))))
    return sorted(words)


def stack_vars(kind, service, https_port, http_port, redis_password, api_key):
    """The vars file of one stack (kind: hardened or previous)."""
    if kind not in ("hardened", "previous"):
        raise BenchError("unknown stack %r: hardened or previous" % kind)
    base = {"llmops_service": service, "llmops_https_port": https_port, "llmops_http_port": http_port,
            "redis_password": redis_password, "gateway_api_keys": [api_key]}
    if kind == "hardened":
        return dict(base, qa_service_sensitive_words=sensitive_words(), hbench_unharden_keys=[], **HARDENED_SWITCHES)
    return dict(base, hbench_unharden_keys=DEFINITION_KEYS, **PREVIOUS_SWITCHES)


def hardening_of(info):
    """The hardening a container runs with (docker inspect), for the report and the check."""
    host = info["HostConfig"]
    return {"read_only": bool(host.get("ReadonlyRootfs")), "cap_drop": host.get("CapDrop") or [],
            "no_new_privileges": any(o.startswith("no-new-privileges") for o in host.get("SecurityOpt") or []),
            "memory": host.get("Memory") or 0, "pids_limit": max(host.get("PidsLimit") or 0, 0),
            "cpus": (host.get("NanoCpus") or 0) / 1e9}


def hardening_problems(kind, found):
    """Containers of a stack ({name: hardening_of}) that are not what the stack claims to be."""
    problems = []
    for name, state in sorted(found.items()):
        hardened = state["read_only"] and state["cap_drop"] == ["ALL"] and state["no_new_privileges"] \
            and state["memory"] > 0 and state["pids_limit"] > 0
        bare = not (state["read_only"] or state["cap_drop"] or state["no_new_privileges"] or state["memory"]
                    or state["pids_limit"] or state["cpus"])
        if (kind == "hardened" and not hardened) or (kind == "previous" and not bare):
            problems.append("%s (%s): %s" % (name, kind, state))
    return problems


def _mount_spec(mount):
    if mount.get("Type") == "bind":
        spec = "type=bind,source=%s,target=%s" % (mount["Source"], mount["Destination"])
    elif mount.get("Type") == "volume":
        spec = "type=volume,source=%s,target=%s" % (mount["Name"], mount["Destination"])
    else:
        return None  # tmpfs: part of the hardening (a writable root needs none)
    return spec + ("" if mount.get("RW", True) else ",readonly")


def run_args_without_hardening(info, image_config):
    """``docker run`` arguments for the container ``info`` (docker inspect) as it is, without its
    read-only root, tmpfs, cap_drop/cap_add, security options, memory, pids and CPU limits.

    image_config: the image's Config (docker image inspect), so that only what the container
    sets itself is repeated."""
    config, host = info["Config"], info["HostConfig"]
    name = info["Name"].lstrip("/")
    if host.get("PortBindings"):
        raise BenchError("%s publishes ports: it cannot be recreated here without closing them; "
                         "only containers without published ports are unhardened" % name)
    args = ["run", "-d", "--name", name, "--network", host.get("NetworkMode") or "default"]
    image_labels = image_config.get("Labels") or {}
    for key, value in sorted((config.get("Labels") or {}).items()):
        if image_labels.get(key) != value:
            args += ["--label", "%s=%s" % (key, value)]
    image_env = set(image_config.get("Env") or [])
    for item in config.get("Env") or []:
        if item not in image_env:
            args += ["--env", item]
    for mount in info.get("Mounts") or []:
        spec = _mount_spec(mount)
        if spec:
            args += ["--mount", spec]
    if host.get("Init"):
        args.append("--init")
    for key, flag in (("User", "--user"), ("WorkingDir", "--workdir"), ("StopSignal", "--stop-signal")):
        if config.get(key) and config.get(key) != image_config.get(key):
            args += [flag, config[key]]
    if config.get("StopTimeout") is not None:
        args += ["--stop-timeout", str(config["StopTimeout"])]
    if (config.get("Healthcheck") or {}).get("Test") == ["NONE"]:
        args.append("--no-healthcheck")
    entrypoint, command = config.get("Entrypoint") or [], config.get("Cmd") or []
    own_entrypoint = entrypoint != (image_config.get("Entrypoint") or [])
    if own_entrypoint:
        args += ["--entrypoint", entrypoint[0] if entrypoint else ""]
    args.append(config["Image"])
    if own_entrypoint:
        args += entrypoint[1:] + command  # a new entrypoint drops the image's command
    elif command != (image_config.get("Cmd") or []):
        args += command
    return args


def percentile(values, share):
    """Nearest-rank percentile (share in 0..100) of a non-empty list; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share / 100.0 * len(ordered)) - 1)]


def stack_figures(rounds):
    """Figures of one stack over its rounds: each round ``{"results": [(seconds, ok, error)],
    "wall": seconds, "misses": cache misses the qa-api counted during the round}``."""
    results = [r for one in rounds for r in one["results"]]
    good = [r[0] for r in results if r[1]]
    wall = sum(one["wall"] for one in rounds)

    def ms(value):
        return None if value is None else round(value * 1000.0, 1)
    return {
        "requests": len(results),
        "failures": len(results) - len(good),
        "throughput_rps": round(len(good) / wall, 1) if wall else None,
        "latency_ms": {"p50": ms(percentile(good, 50)), "p99": ms(percentile(good, 99)),
                       "max": ms(max(good) if good else None)},
        "cache_misses_during_load": sum(one["misses"] for one in rounds),
        "rounds": [{"requests": len(one["results"]), "rps": round(sum(1 for r in one["results"] if r[1]) / one["wall"], 1),
                    "p99_ms": ms(percentile([r[0] for r in one["results"] if r[1]], 99))} for one in rounds],
        "errors": sorted({r[2] for r in results if r[2]})[:5],
    }


def ratios(hardened, previous):
    """hardened / previous for throughput, p50 and p99, overall and per round (None where
    previous has no figure)."""
    def ratio(a, b):
        return round(a / b, 3) if a is not None and b else None
    return {"throughput": ratio(hardened["throughput_rps"], previous["throughput_rps"]),
            "p50": ratio(hardened["latency_ms"]["p50"], previous["latency_ms"]["p50"]),
            "p99": ratio(hardened["latency_ms"]["p99"], previous["latency_ms"]["p99"]),
            # each round's two loads ran back to back: their spread shows the machine's noise
            "throughput_by_round": [ratio(h["rps"], p["rps"]) for h, p in zip(hardened["rounds"], previous["rounds"])],
            "p99_by_round": [ratio(h["p99_ms"], p["p99_ms"]) for h, p in zip(hardened["rounds"], previous["rounds"])]}


def order_of_round(index):
    """Which stack goes first in round ``index``: alternated, so neither always runs second."""
    return ("hardened", "previous") if index % 2 == 0 else ("previous", "hardened")


def metric_value(text, name):
    """The value of an unlabelled Prometheus sample ``name`` in ``text`` (0.0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{}"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
