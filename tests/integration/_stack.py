"""What the integration tests share: the deployed service under test and how to drive it.

The service is named by the environment (Molecule scenarios `bluegreen` and `canary` set it):
LLMOPS_SERVICE, LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY. Tests skip without it.
"""
import calendar
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "awx"))
import _awx_job  # noqa: E402  pylint: disable=wrong-import-position
from loadgen import LoadGen, summarize  # noqa: E402,F401  pylint: disable=unused-import

SERVICE = os.environ.get("LLMOPS_SERVICE", "")
PORT = int(os.environ.get("LLMOPS_HTTPS_PORT", "0") or 0)
INVENTORY = os.environ.get("LLMOPS_INVENTORY", "")
STATE_DIR = pathlib.Path("/var/lib/llmops") / SERVICE
CACERT = STATE_DIR / "gateway" / "tls" / "gateway.crt"

needs_stack = pytest.mark.skipif(not (SERVICE and PORT and INVENTORY),
                                 reason="needs a deployed service: run through molecule scenario bluegreen "
                                        "(or set LLMOPS_SERVICE, LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY)")


# Extra vars of a release-only deploy: the platform (engine, Redis, gateway, monitoring) stays as
# Molecule's full converge left it; each test's release runs in about half the tasks.
RELEASE_ONLY = {"deploy_platform": False}


def ansible(args, timeout=1800, env=None):
    """Run an ansible command from the checkout with its ansible.cfg; never raises on failure."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", **(env or {}))
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def playbook(path, extra=None, check=False, env=None, timeout=1800):
    """``ansible-playbook -i <inventory> <path> -e <json>`` (path relative to the checkout)."""
    args = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", INVENTORY, str(path), "-e", json.dumps(extra or {})]
    return ansible(args + (["--check"] if check else []), timeout=timeout, env=env)


class AwxJob:  # pylint: disable=too-few-public-methods
    """What awx_playbook returns: playbook()'s returncode and stdout, plus the job's status."""

    def __init__(self, result, stdout, failures):
        self.returncode, self.status, self.stdout, self.failures = result.rc, result.status, stdout, failures


_AWX = {}
# The operator an AWX job's audit lines name (awx_user_name, awx_job_id and the job's JOB_ID).
AWX_OPERATOR = "%s (AWX job %d)" % (_awx_job.USER, _awx_job.JOB)


def awx_playbook(path, extra=None, name="job"):
    """Run a playbook as an AWX job template does (tests/awx/_awx_job.py): ansible-runner with a
    private data dir holding the scenario's inventory, a copy of the project's tracked files (no
    .venv, no .cache), the collections of collections/requirements.yml, AWX's extra vars, and
    the ansible-playbook of a virtualenv with only the execution environment's packages."""
    if not _AWX:
        base = pathlib.Path(tempfile.mkdtemp(prefix="llmops-awx-job-"))
        _awx_job.copy_tracked(base / "project")
        (base / "galaxy-home").mkdir()
        collections, _names = _awx_job.install_collections(base, base / "galaxy-home")
        _AWX.update(base=base, collections=collections, venv=_awx_job.ee_venv())
    private = pathlib.Path(tempfile.mkdtemp(prefix=name + "-", dir=_AWX["base"]))
    shutil.copytree(pathlib.Path(INVENTORY).parent, private / "inventory")
    # The controller's own home: the service's secrets (API key, Redis password) are where the
    # deploys of this scenario keep them; in AWX they come from its credentials.
    env = _awx_job.job_env(_AWX["collections"], os.path.expanduser("~"), _AWX["venv"] / "bin")
    result, _messages, stdout, failures = _awx_job.run_job(private, _AWX["base"] / "project", str(path),
                                                           extra or {}, env, name)
    return AwxJob(result, stdout, failures)


def json_playbook(path, extra=None, check=False):
    """Run with the json callback: ``(rc, {task name: [host results]}, whole output)``."""
    json_env = {"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
    proc = playbook(path, extra, check, env=json_env)
    try:
        data = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        pytest.fail("%s printed no JSON: %s %s" % (path, proc.stdout[-2000:], proc.stderr[-2000:]))
    tasks = {}
    for play in data["plays"]:
        for task in play["tasks"]:
            # A role's task is named "<role> : <name>": index it by both.
            name = task["task"]["name"]
            for key in sorted({name, name.rpartition(" : ")[2]}):
                tasks.setdefault(key, []).extend(task["hosts"].values())
    return proc.returncode, tasks, data


def changed_count(data):
    """Changed tasks of a json-callback run, all hosts."""
    return sum(stats.get("changed", 0) for stats in data["stats"].values())


def state():
    return json.loads((STATE_DIR / "state.json").read_text())


def audit():
    path = STATE_DIR / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def api_key():
    return pathlib.Path(os.path.expanduser("~/.config/llmops/%s/api_key" % SERVICE)).read_text().strip()


def load(workers=2, max_seconds=900):
    """A started load generator (openai SDK, streaming and not) against the gateway on 127.0.0.1."""
    return LoadGen(base_url="https://127.0.0.1:%d/v1" % PORT, api_key=api_key(), cacert=str(CACERT),
                   workers=workers, max_seconds=max_seconds).start()


def lock(operation="maintenance", ttl=300):
    """Take the service lock as an operator would (ad-hoc, not bound to a play); returns its token."""
    proc = ansible([str(ROOT / ".venv/bin/ansible"), "-i", INVENTORY, "llmops", "-m", "llmops.bluegreen.bluegreen_lock",
                    "-a", "service=%s state=present operation=%s ttl=%d" % (SERVICE, operation, ttl)],
                   env={"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["token"]


def unlock(token):
    ansible([str(ROOT / ".venv/bin/ansible"), "-i", INVENTORY, "llmops", "-m", "llmops.bluegreen.bluegreen_lock",
             "-a", "service=%s state=absent token=%s" % (SERVICE, token)])


def running(container):
    out = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", container],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() == "true"


def epoch(iso):
    """Seconds since the epoch of an audit line's time (UTC, whole seconds)."""
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def _service_logs(since, limit=8):
    """Warnings, errors and non-2xx access lines every container of the service logged since `since`."""
    listed = subprocess.run(["docker", "ps", "-a", "--filter", "name=^%s-" % SERVICE, "--format", "{{.Names}}"],
                            capture_output=True, text=True, check=False)
    out = []
    for name in sorted(listed.stdout.split()):
        logs = subprocess.run(["docker", "logs", "--since", "%d" % int(since), name],
                              capture_output=True, text=True, check=False)
        lines = [line for line in (logs.stdout + logs.stderr).splitlines()
                 if re.search(r'WARNING|ERROR|error|\[crit\]|\[alert\]|"status": ?"?[45]\d\d', line)]
        if lines:
            out.append("--- %s (%d lines, last %d):" % (name, len(lines), min(limit, len(lines))))
            out.extend(line[:400] for line in lines[-limit:])
    return out


def explain(proc, since):
    """A play's last output with what the service's containers logged since `since` and their states."""
    states = subprocess.run(["docker", "ps", "-a", "--filter", "name=^%s-" % SERVICE, "--format",
                             "{{.Names}} {{.Status}}"], capture_output=True, text=True, check=False)
    lines = [proc.stdout[-4000:], "containers:", states.stdout.strip(), "service logs since the start:"]
    return "\n".join(lines + _service_logs(since))


def assert_load_clean(results, since):
    """Every request of the load answered, every stream ended with [DONE]; if not, the assertion
    names each failed request (seconds from `since`) with the audit lines and what the service's
    containers logged meanwhile: a failure seen only in CI explains itself."""
    summary = summarize(results)
    if summary["requests_total"] > 0 and summary["requests_failed"] == 0 and summary["streams_truncated"] == 0:
        return summary
    failed = ["%+7.1f s .. %+7.1f s %-6s %-6s %s"
              % (r.start - since, r.end - since, r.kind, r.color or "-", r.error or "truncated")
              for r in results if not r.ok or r.truncated]
    switches = ["%s %s %s %s" % (line.get("time"), line.get("action"), line.get("weights"), line.get("reason", ""))
                for line in audit() if epoch(line["time"]) >= since - 1]
    head = "%d of %d requests failed, %d streams cut: %s" % (
        summary["requests_failed"], summary["requests_total"], summary["streams_truncated"], summary["errors"][:2])
    raise AssertionError("\n".join([head, "failed requests (from the test's start):"] + failed
                                   + ["audit since then:"] + switches + ["service logs since then:"]
                                   + _service_logs(since)))
