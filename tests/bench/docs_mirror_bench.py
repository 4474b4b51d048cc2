"""Benchmark: the documents to a host as one archive vs a copy of the directory.

Runs real ansible-playbook plays on localhost (local connection) for N documents: the old way
(ansible.builtin.copy of the directory, a module run per file) and the knowledge_base role's way
(llmops.bluegreen.docs_archive on the controller, one ansible.builtin.copy of the archive, one
ansible.builtin.unarchive). Each is timed on a first run (everything new) and a re-run (nothing
changed). Prints one JSON object with the seconds and the ratios copy/archive.

    .venv/bin/python tests/bench/docs_mirror_bench.py [--docs 10 200]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]

COPY = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Copy the documents, a module run per file
      ansible.builtin.copy:
        src: "{{ src }}/"
        dest: "{{ dest }}/"
        mode: "0644"
        directory_mode: "0755"
"""

ARCHIVE = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Pack the documents on the controller
      llmops.bluegreen.docs_archive:
        src: "{{ src }}"
        dest: "{{ work }}/controller/docs.tar.gz"
      delegate_to: localhost
    - name: Copy the archive
      ansible.builtin.copy:
        src: "{{ work }}/controller/docs.tar.gz"
        dest: "{{ work }}/host.tar.gz"
        mode: "0600"
    - name: Extract it
      ansible.builtin.unarchive:
        src: "{{ work }}/host.tar.gz"
        dest: "{{ dest }}"
        remote_src: true
"""


def make_docs(root, count):
    for i in range(count):
        sub = root / ("dept-%02d" % (i % 7))
        sub.mkdir(parents=True, exist_ok=True)
        name = ("制度-%04d.md" if i % 3 == 0 else "policy-%04d.md") % i
        (sub / name).write_text("# Policy %d\n\n%s\n" % (i, "Rule text, 规则正文. " * 40), encoding="utf-8")


def play(work, text, extra):
    book = work / ("play-%d.yml" % abs(hash(text)))
    book.write_text(text)
    inventory = work / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    started = time.monotonic()
    proc = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(inventory), str(book),
                           "-e", json.dumps(extra)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=3600, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit("play failed: %s" % proc.stdout[-3000:])
    return round(elapsed, 2)


def measure(count):
    with tempfile.TemporaryDirectory(prefix="llmops-mirror-bench-") as tmp:
        work = pathlib.Path(tmp)
        src = work / "src"
        make_docs(src, count)
        figures = {}
        for label, text in (("copy", COPY), ("archive", ARCHIVE)):
            dest = work / ("dest-" + label)
            dest.mkdir()
            extra = {"src": str(src), "dest": str(dest), "work": str(work / label)}
            (work / label).mkdir()
            figures[label] = {"first_s": play(work, text, extra), "rerun_s": play(work, text, extra)}
        return {
            "documents": count,
            "copy": figures["copy"],
            "archive": figures["archive"],
            "ratio_first": round(figures["copy"]["first_s"] / figures["archive"]["first_s"], 2),
            "ratio_rerun": round(figures["copy"]["rerun_s"] / figures["archive"]["rerun_s"], 2),
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[10, 200], help="document counts to measure")
    args = parser.parse_args()
    print(json.dumps({"bench": "docs_mirror", "cpus": os.cpu_count(), "runs": [measure(n) for n in args.docs]}))


if __name__ == "__main__":
    main()
