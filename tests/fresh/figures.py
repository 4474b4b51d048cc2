"""Print the one JSON line of figures of run-fresh-machine.sh from its logs.

Usage: figures.py LOG_DIR MACHINE_IMAGE FAILED_PHASE_OR_EMPTY [EXTRA_JSON_FILE]

LOG_DIR holds phases.tsv (phase, start, end, exit status) and <phase>.log files whose
lines are "<epoch seconds> <text>". EXTRA_JSON_FILE (run-airgap.sh: the bundle and its size), when it
exists, is merged into the figures.
"""
import json
import pathlib
import re
import sys

ROLE_LINE = re.compile(r"^(\S+) -{3,} (\d+(?:\.\d+)?)s$")
RECAP_LINE = re.compile(r"^\S+\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def read_log(path):
    """[(epoch, text)] of a phase log; [] when it does not exist."""
    if not path.exists():
        return []
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        stamp, text = (raw.split(" ", 1) + [""])[:2]
        try:
            lines.append((float(stamp), text))
        except ValueError:
            continue
    return lines


def first_time(lines, prefix):
    return next((t for t, text in lines if text.startswith(prefix)), None)


def deploy_figures(lines, start, end):
    """Seconds of the steps of one `make deploy`, the role times and the recap counts."""
    playbook = first_time(lines, ".venv/bin/ansible-playbook ")
    smoke = first_time(lines, ".venv/bin/python tests/smoke/ask.py")
    steps = {"venv": playbook - start if playbook else None,
             "playbook": (smoke or end) - playbook if playbook else None,
             "smoke": end - smoke if smoke else None}
    roles = {}
    for text in (line[1] for line in lines):
        match = ROLE_LINE.match(text.strip())
        if match and match.group(1) != "total":
            roles[match.group(1).rsplit(".", 1)[-1]] = float(match.group(2))
    recap = [tuple(int(g) for g in m.groups()) for m in (RECAP_LINE.match(line[1].strip()) for line in lines) if m]
    return ({k: round(v, 1) for k, v in steps.items() if v is not None}, roles,
            {"changed": sum(r[0] for r in recap), "unreachable": sum(r[1] for r in recap),
             "failed": sum(r[2] for r in recap)} if recap else None)


def main():
    logs, machine_image, failed = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    out = {"ok": not failed, "failed": failed or None, "machine_image": machine_image,
           "seconds": {}, "deploy": None, "rerun": None, "images_bytes": {}}
    phases = {}
    tsv = logs / "phases.tsv"
    for row in (tsv.read_text().splitlines() if tsv.exists() else []):
        phase, start, end, status = row.split("\t")
        phases[phase] = (float(start), float(end), int(status))
        out["seconds"][phase] = round(float(end) - float(start), 1)
    if phases:
        out["seconds"]["total"] = round(max(p[1] for p in phases.values()) - min(p[0] for p in phases.values()), 1)
    for phase in ("deploy", "rerun"):
        if phase in phases:
            steps, roles, recap = deploy_figures(read_log(logs / (phase + ".log")), *phases[phase][:2])
            out[phase] = {"steps_s": steps, "roles_s": roles, "recap": recap}
    for line in read_log(logs / "sizes.log"):
        ref, size = (line[1].rsplit(" ", 1) + [""])[:2]
        if size.isdigit() and ref == "/var/lib/docker":
            out["docker_dir_bytes"] = int(size)
        elif size.isdigit():
            out["images_bytes"][ref] = int(size)
    copy = read_log(logs / "copy.log")
    if copy and copy[0][1].startswith("commit "):
        out["commit"] = copy[0][1].split()[1]
    extra = pathlib.Path(sys.argv[4]) if len(sys.argv) > 4 else None
    if extra and extra.exists():
        out.update(json.loads(extra.read_text()))
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
