"""make bench-hardening: what the hardening (issue 9) costs on cache hits.

Starts, on a network of its own (everything named hbench-*, removed at the end even on
failure), one llama.cpp server with the bundled model and one knowledge base shared by two
stacks of Redis + qa-api + gateway from the same images (tests/bench/hardening_stack.yml):
"hardened", as the collection's roles run them (read-only roots, cap_drop ALL,
no-new-privileges, memory/pids/CPU limits, sensitive-word list, PII redaction, per-key
limits generous enough for the bench's one key, TLS and HSTS as rendered), and "previous",
the same with the hardening switches off (hardening_parts.PREVIOUS_SWITCHES) and its
containers recreated without read-only root, cap_drop, no-new-privileges and limits.
It warms each stack's cache, then drives CONCURRENCY concurrent streaming chat requests
(openai SDK, each must end with ``data: [DONE]``) of cache hits at each stack in turn for a
few alternated rounds, and prints one JSON object. Traffic goes to 127.0.0.1 only; every
loop is bounded.
"""
import argparse
import asyncio
import json
import os
import pathlib
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

import httpx2
from openai import AsyncOpenAI

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "collections"))
sys.path.insert(0, str(ROOT / "tests" / "security"))
# pylint: disable=wrong-import-position
from _secgw import free_port  # noqa: E402
from hardening_parts import (HARDENED_SWITCHES, PREVIOUS_SWITCHES, BenchError, hardening_of, hardening_problems, metric_value,  # noqa: E402
                             order_of_round, ratios, run_args_without_hardening, stack_figures, stack_vars)
from loadgen import QUESTIONS as ALL_QUESTIONS  # noqa: E402
from switch_bench import wait_ready  # noqa: E402
from ansible_collections.llmops.bluegreen.plugins.module_utils._names import names  # noqa: E402

PREFIX = "hbench"
NETWORK = PREFIX + "-net"
SERVICES = {"hardened": PREFIX + "-hard", "previous": PREFIX + "-prev"}
MODEL = "smollm2-135m-instruct"
CACHE_PREFIX = "qa:answer:"  # qa_api.cache.KEY_PREFIX without its version
# The cache hits asked (English and Chinese): each is one generation while warming (~40 s on a busy machine).
QUESTIONS = ALL_QUESTIONS[:4]
# (variable in .cache/images.env, role variable it feeds)
IMAGES = (("QA_API_IMAGE", ("qa_service_image", "knowledge_base_builder_image")),
          ("LLM_IMAGE", ("inference_llamacpp_image",)),
          ("REDIS_IMAGE", ("redis_image",)),
          ("LLMOPS_GATEWAY_IMAGE", ("gateway_image",)))


def docker(*args, check=True, timeout=120):
    proc = subprocess.run(["docker"] + list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise BenchError("docker %s: %s" % (" ".join(args[:3]), proc.stderr.strip()[-500:]))
    return proc.stdout.strip()


def images():
    found = {}
    for env, roles in IMAGES:
        tag = os.environ.get(env, "")
        if not tag or docker("image", "inspect", tag, check=False, timeout=30) == "":
            raise BenchError("image %s=%r is not built: run make host (it writes .cache/images.env), "
                             "or set %s to a built tag" % (env, tag, env))
        found.update(dict.fromkeys(roles, tag))
    return found


def write_json(path, data):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        json.dump(data, handle)


def bring_up(base):
    """Write the vars files and run hardening_stack.yml; by stack: its HTTPS port, CA
    certificate, API key and Redis password."""
    common = dict(images(), hbench_dir=str(base), llmops_network=NETWORK, llmops_state_dir=str(base / "state"),
                  llmops_bind_address="127.0.0.1", inference_api_key=secrets.token_hex(16),
                  # warming on a busy machine: the same patience for both stacks
                  qa_service_llm_first_token_timeout=240)
    write_json(base / "common.json", common)
    stacks = {}
    for kind, service in SERVICES.items():
        stacks[kind] = {"port": free_port(), "key": "hbench%s%s" % (kind, secrets.token_hex(16)),
                        "redis_password": secrets.token_hex(16),
                        "cacert": str(base / "state" / service / "gateway" / "tls" / "gateway.crt")}
        write_json(base / ("%s.json" % kind), stack_vars(kind, service, stacks[kind]["port"], free_port(),
                                                         stacks[kind]["redis_password"], stacks[kind]["key"]))
    (base / "inventory.json").write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(base / "inventory.json"), str(HERE / "hardening_stack.yml"),
                           "-e", "@%s" % (base / "common.json")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500, check=False)
    if proc.returncode != 0:
        raise BenchError("hardening_stack.yml failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-1000:]))
    return stacks


def unharden(container):
    """Run ``container`` again as it is, minus its hardening."""
    info = json.loads(docker("inspect", container))[0]
    image = json.loads(docker("image", "inspect", info["Config"]["Image"]))[0]["Config"]
    args = run_args_without_hardening(info, image)
    docker("rm", "-f", container)
    docker(*args)


def containers(kind):
    found = names(SERVICES[kind], None, NETWORK)
    return [found["redis"], found["qa"]["blue"], found["gateway"]]


def unharden_previous(port, cacert):
    """Redis and the gateway's nginx (the qa-api ran from its definition without the hardening
    keys); qa-api reconnects to Redis by name, the gateway re-resolves the color."""
    redis, qa_api, gateway = containers("previous")
    for container in (redis, gateway):
        unharden(container)
    if not wait_ready(qa_api, timeout=120):
        raise BenchError("%s not ready after Redis's re-run: docker logs %s" % (qa_api, qa_api))
    context = ssl.create_default_context(cafile=cacert)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx2.get("https://127.0.0.1:%d/health" % port, verify=context, timeout=5).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(1)
    raise BenchError("the previous gateway does not answer /health 60 s after its re-run: docker logs %s" % gateway)


def check_hardening():
    """Each stack's containers as docker runs them; refuses a hardened stack that is not, or the reverse."""
    found = dict((kind, dict((c, hardening_of(json.loads(docker("inspect", c))[0])) for c in containers(kind)))
                 for kind in SERVICES)
    problems = hardening_problems("hardened", found["hardened"]) + hardening_problems("previous", found["previous"])
    if problems:
        raise BenchError("the stacks are not what they claim: %s" % "; ".join(problems))
    return found


def cache_misses(kind):
    """qa_cache_misses_total of a stack's qa-api (read inside its container)."""
    probe = "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:8000/metrics',timeout=10).read().decode())"
    return metric_value(docker("exec", names(SERVICES[kind], None, NETWORK)["qa"]["blue"], "python3", "-c", probe),
                        "qa_cache_misses_total")


def client_for(port, key, cacert, concurrency, timeout):
    http = httpx2.AsyncClient(verify=ssl.create_default_context(cafile=cacert), timeout=timeout,
                              limits=httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))
    return AsyncOpenAI(base_url="https://127.0.0.1:%d/v1" % port, api_key=key, max_retries=0, http_client=http)


async def ask(client, question, max_tokens):
    """One streaming chat request: (seconds, ok, error); ok only when it ends with data: [DONE]."""
    start = time.perf_counter()
    try:
        last = ""
        async with client.chat.completions.with_streaming_response.create(
                model=MODEL, messages=[{"role": "user", "content": question}], max_tokens=max_tokens,
                temperature=0, stream=True) as resp:
            async for line in resp.iter_lines():
                if line.startswith("data:"):
                    last = line.strip()
        ok = last == "data: [DONE]"
        return time.perf_counter() - start, ok, "" if ok else "stream ended without data: [DONE]"
    except Exception as exc:  # every failure is a data point, never a crash of the load
        return time.perf_counter() - start, False, "%s: %s" % (type(exc).__name__, str(exc)[:200])


async def ask_all(stack, max_tokens, attempt):
    """Each question once, on a client with a long timeout (a generation on a busy 2-core
    machine can take minutes); every one must stream to [DONE]."""
    client = client_for(stack["port"], stack["key"], stack["cacert"], 1, 300)
    try:
        for question in QUESTIONS:
            seconds, ok, error = await ask(client, question, max_tokens)
            if not ok:
                raise BenchError("%s %r failed after %.1f s: %s" % (attempt, question, seconds, error))
    finally:
        await client.close()


def copy_cache(stacks):
    """The hardened Redis's answers into the previous one (MIGRATE COPY): both stacks replay the
    same bytes, and the model answers each question once. Passwords go in on stdin, not argv."""
    source, target = (names(SERVICES[kind], None, NETWORK)["redis"] for kind in ("hardened", "previous"))

    def cli(commands):
        proc = subprocess.run(["docker", "exec", "-i", source, "redis-cli", "--no-auth-warning"], input=commands,
                              capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise BenchError("redis-cli in %s: %s" % (source, proc.stderr.strip()[-300:]))
        return proc.stdout.split("\n")
    auth = "AUTH %s\n" % stacks["hardened"]["redis_password"]
    keys = [k for k in cli(auth + "KEYS %s*\n" % CACHE_PREFIX)[1:] if k.startswith(CACHE_PREFIX)]
    if len(keys) < len(QUESTIONS):
        raise BenchError("the hardened Redis holds %d cached answers after warming, expected %d"
                         % (len(keys), len(QUESTIONS)))
    answer = cli(auth + 'MIGRATE %s 6379 "" 0 10000 COPY REPLACE AUTH %s KEYS %s\n'
                 % (target, stacks["previous"]["redis_password"], " ".join(keys)))
    if answer[1].strip() != "OK":
        raise BenchError("MIGRATE of the cached answers to %s answered %r" % (target, answer[1][:200]))
    return len(keys)


async def warm(stacks, max_tokens):
    """Generate each answer once in the hardened stack, copy the cache, and ask both stacks once
    more: the previous stack's qa-api must count no miss (its cache holds the same answers)."""
    await ask_all(stacks["hardened"], max_tokens, "warming (generation)")
    copy_cache(stacks)
    for kind in SERVICES:
        misses = cache_misses(kind)
        await ask_all(stacks[kind], max_tokens, "warming (cache hit)")
        if cache_misses(kind) != misses:
            raise BenchError("%s: the warmed questions missed the cache (%d misses)" % (kind, cache_misses(kind) - misses))


async def drive(client, concurrency, seconds, max_tokens):
    """``concurrency`` workers asking the warmed questions until ``seconds`` have passed."""
    results = []
    deadline = time.monotonic() + seconds

    async def worker(index):
        turn = index
        while time.monotonic() < deadline:
            result = await ask(client, QUESTIONS[turn % len(QUESTIONS)], max_tokens)
            results.append(result)
            turn += 1
            if not result[1]:
                await asyncio.sleep(0.2)  # a failing stack is not hammered in a tight loop

    start = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(concurrency))), seconds + 120)
    return results, time.monotonic() - start


async def measure(args, stacks, phases):
    started = time.monotonic()
    await warm(stacks, args.max_tokens)
    phases["warm"] = round(time.monotonic() - started, 1)
    clients = dict((kind, client_for(stacks[kind]["port"], stacks[kind]["key"], stacks[kind]["cacert"],
                                     args.concurrency, 60)) for kind in SERVICES)
    try:
        rounds = dict((kind, []) for kind in SERVICES)
        for index in range(args.rounds):
            for kind in order_of_round(index):
                misses = cache_misses(kind)
                results, wall = await drive(clients[kind], args.concurrency, args.seconds, args.max_tokens)
                rounds[kind].append({"results": results, "wall": wall, "misses": cache_misses(kind) - misses})
                await asyncio.sleep(args.pause)  # let the last connections close before the other stack
        return rounds
    finally:
        for client in clients.values():
            await client.close()


def cleanup(base):
    """Every hbench-* container, volume and network, and the state directory."""
    for container in docker("ps", "-a", "--filter", "name=^%s-" % PREFIX, "--format", "{{.Names}}", check=False).split():
        docker("rm", "-f", container, check=False)
    for volume in docker("volume", "ls", "--filter", "name=^%s-" % PREFIX, "--format", "{{.Name}}", check=False).split():
        docker("volume", "rm", "-f", volume, check=False)
    docker("network", "rm", NETWORK, check=False)
    shutil.rmtree(base, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent streams (default 50)")
    parser.add_argument("--seconds", type=float, default=20, help="seconds of load per stack and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    parser.add_argument("--pause", type=float, default=3, help="seconds between two loads")
    parser.add_argument("--max-tokens", type=int, default=48, help="max_tokens of every request (warm and load)")
    parser.add_argument("--out", help="also write the JSON object to this file")
    args = parser.parse_args()
    if not 1 <= args.concurrency <= 500 or not 1 <= args.seconds <= 300 or not 1 <= args.rounds <= 10:
        parser.error("--concurrency 1..500, --seconds 1..300, --rounds 1..10 keep a run bounded")
    if docker("ps", "-a", "--filter", "name=^%s-" % PREFIX, "--format", "{{.Names}}", check=False):
        parser.error("containers named %s-* exist (another bench run?): remove them first" % PREFIX)
    # SIGTERM (timeout, CI) ends like Ctrl-C, through the cleanup below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    base = pathlib.Path(tempfile.mkdtemp(prefix=PREFIX + "-"))
    started = time.monotonic()
    phases = {}
    try:
        stacks = bring_up(base)
        phases["playbook"] = round(time.monotonic() - started, 1)
        unharden_previous(stacks["previous"]["port"], stacks["previous"]["cacert"])
        hardening = check_hardening()
        phases["unharden_and_check"] = round(time.monotonic() - started - phases["playbook"], 1)
        rounds = asyncio.run(measure(args, stacks, phases))
        phases["total"] = round(time.monotonic() - started, 1)
    except BenchError as exc:
        print("bench-hardening: %s" % exc, file=sys.stderr)
        return 1
    finally:
        cleanup(base)
    figures = dict((kind, stack_figures(rounds[kind])) for kind in SERVICES)
    report = {"bench": "hardening", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "concurrency": args.concurrency, "seconds_per_round": args.seconds, "rounds": args.rounds,
              "max_tokens": args.max_tokens, "questions": len(QUESTIONS), "phase_seconds": phases,
              "hardened": figures["hardened"], "previous": figures["previous"],
              "ratios_hardened_over_previous": ratios(figures["hardened"], figures["previous"]),
              "previous_switches": PREVIOUS_SWITCHES, "hardened_switches": HARDENED_SWITCHES,
              "containers": hardening}
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")
    clean = all(figures[k]["failures"] == 0 and figures[k]["cache_misses_during_load"] == 0 for k in SERVICES)
    return 0 if clean else 2


if __name__ == "__main__":
    sys.exit(main())
