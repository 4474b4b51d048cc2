"""Add (or refresh) the sha256 of every pinned distribution in an image's requirements files.

    python3 scripts/pin_hashes.py WHEELHOUSE IMAGE_DIR

For each `*requirements.txt` of IMAGE_DIR, each `name==version` line gets `--hash=sha256:…`
for every file of that name and version in WHEELHOUSE (the images role's wheelhouse of the
image, /var/cache/llmops/wheels/<image>). With hashes, `pip download` (the images role) and
`pip install --require-hashes` (the Dockerfiles) refuse a file that is not the one pinned here.
A pin without a file in the wheelhouse is an error: download the wheelhouse first (make host).
"""
import hashlib
import os
import re
import sys

PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?==(?P<version>[^\s;\\]+)")


def normalize(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def files_by_pin(wheelhouse):
    """{(normalized name, version): [file, ...]} of wheels and sdists."""
    found = {}
    for entry in sorted(os.listdir(wheelhouse)):
        if entry.endswith(".whl"):
            name, version = entry.split("-")[:2]
        elif entry.endswith((".tar.gz", ".zip")):
            stem = entry[:-7] if entry.endswith(".tar.gz") else entry[:-4]
            name, version = stem.rsplit("-", 1)
        else:
            continue
        found.setdefault((normalize(name), version), []).append(os.path.join(wheelhouse, entry))
    return found


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pin_file(path, found):
    """The file's text with hashes on every pin; raises SystemExit naming pins without a file."""
    out, missing = [], []
    for line in open(path, encoding="utf-8").read().splitlines():
        match = PIN.match(line.strip())
        if not match:
            out.append(line)
            continue
        requirement = line.split("--hash=")[0].strip()
        files = found.get((normalize(match.group("name")), match.group("version")))
        if not files:
            missing.append(requirement)
            out.append(line)
            continue
        hashes = " ".join("--hash=sha256:%s" % sha256(f) for f in files)
        out.append("%s %s" % (requirement, hashes))
    if missing:
        raise SystemExit("%s: no file in the wheelhouse for %s (run make host, or pip download them)"
                         % (path, ", ".join(missing)))
    return "\n".join(out) + "\n"


def main(wheelhouse, image_dir):
    found = files_by_pin(wheelhouse)
    for entry in sorted(os.listdir(image_dir)):
        if entry.endswith("requirements.txt"):
            path = os.path.join(image_dir, entry)
            text = pin_file(path, found)
            with open(path + ".tmp", "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(path + ".tmp", path)
            print("pinned %s" % path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
