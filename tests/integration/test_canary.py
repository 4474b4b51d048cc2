"""Canary releases judged by the SLO from Prometheus (release_strategy: canary).

Run by Molecule scenario `canary` against the service it converged (cntest; env LLMOPS_SERVICE,
LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY) with monitoring on. A canary release under openai-SDK
load goes 5 -> 25 -> 50 -> 100 with an audit line per step, and a client that counts the
color of every response finds each step's share within 5 points of its weight. A release
whose new color answers chat with errors (its inference timeout cut to 50 ms; the gate let
through) is sent back to the stable color at the first step, and the play names the metric,
its value and the threshold; clients under load saw errors only from the canary's share and
none after the rollback. A canary that cannot be judged (Prometheus unreachable) goes back too.
"""
import http.client
import shutil
import ssl
import threading
import time
import uuid

from _stack import (CACERT, PORT, ROOT, api_key, assert_load_clean, audit, epoch, explain, load, needs_stack, playbook,
                    state, summarize)

pytestmark = needs_stack

STEPS = [5, 25, 50, 100]
STEP_SECONDS = 15
# The weights change at the reload, shortly before the audit line's time (whole seconds, rounded down):
# samples closer than this to a step's line are left out.
MARGIN = 3.0


class ColorCounter(threading.Thread):
    """GET /v1/models through the gateway on one keep-alive connection, recording (time, X-QA-Color)."""

    def __init__(self, max_seconds=900):
        super().__init__(daemon=True)
        self.samples, self.errors = [], 0
        self.stopped = threading.Event()
        self.max_seconds = max_seconds

    def connect(self):
        context = ssl.create_default_context(cafile=str(CACERT))
        context.check_hostname = False
        return http.client.HTTPSConnection("127.0.0.1", PORT, context=context, timeout=10)

    def run(self):
        conn, started = self.connect(), time.time()
        headers = {"Authorization": "Bearer %s" % api_key()}
        while not self.stopped.is_set() and time.time() - started < self.max_seconds:
            try:
                conn.request("GET", "/v1/models", headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    self.samples.append((time.time(), resp.getheader("X-QA-Color")))
                else:
                    self.errors += 1
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn.close()
                conn = self.connect()
            time.sleep(0.01)

    def stop(self):
        self.stopped.set()
        self.join(30)


def changed_docs(tmp_path, tag):
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "examples" / "docs", docs)
    with open(docs / "vpn-howto.txt", "a", encoding="utf-8") as fh:
        fh.write("\nCanary test revision %s %s.\n" % (tag, uuid.uuid4().hex[:8]))
    return docs


def canary(docs, extra=None):
    return playbook("playbooks/deploy.yml", dict(
        extra or {}, knowledge_base_src=str(docs), deploy_platform=False, release_strategy="canary",
        release_canary_steps=STEPS, release_canary_step_seconds=STEP_SECONDS))


def test_a_canary_goes_through_each_step_with_the_measured_share(tmp_path):
    before, lines = state(), len(audit())
    stable = before["active"]
    counter, gen, since = ColorCounter(), load(), time.time()
    counter.start()
    try:
        # The 5 % step sees too few client requests to judge: each step tops up with synthetic requests
        # to the new color. The default 30 of them (per step, each a RAG answer on the color's 1-thread
        # llama.cpp) starve the 2 shared cores for minutes while the clients wait; 8 judge as well.
        proc = canary(changed_docs(tmp_path, "steps"), {"release_slo_min_requests": 6, "release_slo_probe_requests": 8})
    finally:
        results = gen.stop()
        counter.stop()
    assert proc.returncode == 0, explain(proc, since)
    after = state()
    target = after["active"]
    assert target != stable and after["weights"][target] == 100
    steps = [line for line in audit()[lines:] if line["action"] == "switch"]
    assert [line["weights"][target] for line in steps] == STEPS, steps
    assert all(line["result"] == "ok" for line in steps)
    assert [line.get("reason") for line in steps[:-1]] == ["canary step %d %%" % w for w in STEPS[:-1]]
    assert_load_clean(results, since)
    shares = []
    for index, line in enumerate(steps[:-1]):
        begin, end = epoch(line["time"]) + MARGIN, epoch(steps[index + 1]["time"]) - MARGIN
        window = [color for t, color in counter.samples if begin <= t <= end]
        assert len(window) >= 200, "too few samples to measure step %d: %d" % (STEPS[index], len(window))
        share = 100.0 * window.count(target) / len(window)
        shares.append((STEPS[index], round(share, 1), len(window)))
    print("canary shares (weight, measured %, samples):", shares)
    # split_clients draws each request at random: the share of n samples spreads by sqrt(p(1-p)/n) (3.5
    # points at 50 % and 200 samples, about 1.9 at the 700 of a quiet run). Within 4 of those, at most 10
    # points, which still tells the steps 5, 25 and 50 apart.
    for weight, share, samples in shares:
        spread = 100 * (weight / 100.0 * (1 - weight / 100.0) / samples) ** 0.5
        assert abs(share - weight) <= min(10.0, max(5.0, 4 * spread)), (weight, share, samples, shares)
    assert "rolled back" not in proc.stdout
    said = " ".join(proc.stdout.split())
    assert all("SLO of %s at %d %%: SLO met" % (target, weight) in said for weight in STEPS[:-1]), said[-3000:]


def test_a_canary_that_fails_under_traffic_is_sent_back_naming_the_breach(tmp_path):
    before, lines, since = state(), len(audit()), time.time()
    stable = before["active"]
    gen = load()
    try:
        proc = canary(changed_docs(tmp_path, "breach"), {
            # The new color's qa-api gives up on the model after 50 ms: chat answers 502.
            "qa_service_extra_env": {"QA_LLM_TIMEOUT": "0.05"},
            # A gate that lets it through, so that only the canary can catch it.
            "release_gate_threshold": 0.0, "release_gate_margin": 1.0,
            # The verdict must not wait for the thin load of this test: synthetic requests fill the window.
            "release_slo_min_requests": 10})
        # Clients keep asking after the rollback: none of them may fail. A request takes seconds to
        # tens of seconds here, so wait (bounded) until one that started after the abort has ended.
        aborts = [line for line in audit()[lines:] if line["action"] == "abort"]
        if aborts:
            after_abort = epoch(aborts[-1]["time"]) + 1
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and not [r for r in list(gen.results) if r.start >= after_abort]:
                time.sleep(2)
    finally:
        results = gen.stop()
    assert proc.returncode != 0, proc.stdout[-4000:]
    assert "rolled back to %s" % stable in proc.stdout, explain(proc, since)
    assert "error_rate" in proc.stdout and "threshold 0.01" in proc.stdout, proc.stdout[-4000:]
    after = state()
    assert after["active"] == stable and after["weights"][stable] == 100
    new = audit()[lines:]
    assert [line["action"] for line in new] == ["switch", "abort"], new
    assert new[0]["weights"][stable] == 95 and "error_rate" in new[1]["reason"], new
    target = [color for color in new[0]["weights"] if color != stable][0]
    # Clients saw errors only from the canary's share, and none once the abort was written.
    failed = [r for r in results if not r.ok]
    assert all(r.color == target for r in failed), [(r.color, r.error) for r in failed]
    aborted = epoch(new[1]["time"]) + 1
    assert not [r for r in failed if r.start >= aborted], [(r.start, r.error) for r in failed]
    late = [r for r in results if r.start >= aborted]
    assert late and all(r.ok and r.color == stable for r in late), summarize(late)
    print("canary breach: %d requests, %d failed (all on %s), %d after the rollback, all on %s"
          % (len(results), len(failed), target, len(late), stable))


def test_a_canary_that_cannot_be_judged_goes_back_to_the_stable_color(tmp_path):
    # Prometheus unreachable at the first step: the canary is not left at 5 % on an unjudged color.
    before, lines = state(), len(audit())
    stable = before["active"]
    proc = canary(changed_docs(tmp_path, "unjudged"), {"release_slo_prometheus_url": "http://127.0.0.1:9"})
    assert proc.returncode != 0, proc.stdout[-4000:]
    assert "cannot query Prometheus at http://127.0.0.1:9" in proc.stdout, proc.stdout[-4000:]
    assert "traffic is back on %s" % stable in proc.stdout, proc.stdout[-4000:]
    after = state()
    assert after["active"] == stable and after["weights"][stable] == 100, after
    new = audit()[lines:]
    assert [line["action"] for line in new] == ["switch", "abort"], new
    assert "failed at 'Judge the new color against the SLO'" in new[1]["reason"], new
