"""Directory fingerprint shared with the kb_checksum module (docs/contracts.md).

checksum = sha256(concat(rel + "\\0" + sha256hex(file) + "\\n")) over every regular
file below the directory sorted by relative POSIX path, except a file named
manifest.json directly in it. Symlinks are an error: they could point anywhere.
"""

import hashlib
import os

MANIFEST = "manifest.json"
_BLOCK = 1024 * 1024


class FingerprintError(Exception):
    """The directory cannot be fingerprinted (symlink, special file, unreadable)."""


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def list_files(root: str):
    """Sorted relative POSIX paths of the regular files below root."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in list(dirnames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                raise FingerprintError("symlink not allowed: %s" % os.path.relpath(full, root))
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if os.path.islink(full):
                raise FingerprintError("symlink not allowed: %s" % rel)
            if not os.path.isfile(full):
                raise FingerprintError("not a regular file: %s" % rel)
            found.append(rel)
    return sorted(found)


def fingerprint_entries(entries) -> str:
    """Checksum over (rel, sha256hex) pairs; sorts them itself."""
    digest = hashlib.sha256()
    for rel, file_sha in sorted(entries):
        digest.update(("%s\0%s\n" % (rel, file_sha)).encode("utf-8"))
    return digest.hexdigest()


def fingerprint_dir(root: str) -> str:
    if not os.path.isdir(root):
        raise FingerprintError("not a directory: %s" % root)
    entries = []
    for rel in list_files(root):
        if rel == MANIFEST:
            continue
        entries.append((rel, sha256_file(os.path.join(root, rel))))
    return fingerprint_entries(entries)
