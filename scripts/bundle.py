"""Pack, unpack and verify the air-gap bundle (docs/air-gap.md). Standard library only: it runs
on an air-gapped machine before anything is installed.

  bundle.py seal STAGE_DIR ARCHIVE     write STAGE_DIR/SHA256SUMS, then pack STAGE_DIR into ARCHIVE
                                       (written as ARCHIVE.partial and renamed: never a half archive)
  bundle.py unpack ARCHIVE DEST_DIR    extract into DEST_DIR/<bundle name>, every file checked against
                                       SHA256SUMS before the directory gets its name; prints the path
  bundle.py verify BUNDLE_DIR [PATH..] check the files (all, or those under each PATH) against SHA256SUMS

Exit status 0 when all is well; 1 with a message naming each bad file otherwise.
"""
import hashlib
import importlib.util
import json
import os
import pathlib
import shutil
import sys
import tarfile

_UTILS = pathlib.Path(__file__).resolve().parents[1] / "plugins" / "module_utils" / "_bundle.py"
_spec = importlib.util.spec_from_file_location("_llmops_bundle", _UTILS)
bundle = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bundle)

_FIRST = (bundle.SUMS_NAME, bundle.MANIFEST_NAME)


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _member(name, size, mode, mtime, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.type = size, mode, int(mtime), kind
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _pack(stage, order, out):
    """Write the files ``order`` (relative to ``stage``) into the tar ``out``, below the directory stage.name."""
    top = stage.name
    with tarfile.open(str(out), "w", format=tarfile.PAX_FORMAT) as tar:
        dirs = set()
        for rel in order:
            for parent in reversed(pathlib.PurePosixPath(rel).parents[:-1]):
                if str(parent) not in dirs:
                    dirs.add(str(parent))
                    tar.addfile(_member("%s/%s" % (top, parent), 0, 0o755, (stage / parent).stat().st_mtime,
                                        tarfile.DIRTYPE))
            path = stage / rel
            info = path.stat()
            with open(path, "rb") as handle:
                tar.addfile(_member("%s/%s" % (top, rel), info.st_size, 0o755 if info.st_mode & 0o100 else 0o644,
                                    info.st_mtime), handle)


def seal(stage, archive):
    """Write SHA256SUMS of ``stage``, check its manifest, pack it into ``archive`` atomically."""
    stage, archive = pathlib.Path(stage), pathlib.Path(archive)
    sums = bundle.compute_sums(str(stage))
    (stage / bundle.SUMS_NAME).write_text(bundle.format_sums(sums))
    manifest = json.loads((stage / bundle.MANIFEST_NAME).read_text())
    problems = bundle.check_manifest(manifest, sums)
    if problems:
        raise bundle.BundleError("the staged bundle %s is incomplete: %s" % (stage, "; ".join(problems)))
    partial = archive.with_name(archive.name + ".partial")
    # The checksums and the manifest first: an unpacker reads what to expect before the payload.
    order = list(_FIRST) + [rel for rel in sorted(sums) if rel not in _FIRST]
    try:
        _pack(stage, order, partial)
    except BaseException:
        # No half archive left behind, even under another name.
        if partial.exists():
            partial.unlink()
        raise
    _fsync(str(partial))
    os.replace(str(partial), str(archive))
    _fsync(str(archive.parent))
    return {"archive": str(archive), "bytes": archive.stat().st_size, "files": len(sums) + 1,
            "sums_sha256": hashlib.sha256((stage / bundle.SUMS_NAME).read_bytes()).hexdigest()}


def _check_member(member, top):
    """The path of a member below the bundle's top directory; BundleError for anything else."""
    if not (member.isfile() or member.isdir()):
        raise bundle.BundleError("%s is not a file or directory (a link?): refusing to unpack it" % member.name)
    name = member.name.rstrip("/")
    if name == top and member.isdir():
        return ""
    if not name.startswith(top + "/"):
        raise bundle.BundleError("%s is outside the bundle's directory %s/: refusing to unpack it" % (name, top))
    return bundle.safe_relpath(name[len(top) + 1:])


def _extract(tar, first, top, work):
    """Write every member below ``work``; {rel: sha256} of the files, hashed while written."""
    digests = {}
    member = first
    while member is not None:
        rel = _check_member(member, top)
        target = work / rel if rel else work
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with tar.extractfile(member) as source, open(str(target), "xb") as out:
                for block in iter(lambda: source.read(1024 * 1024), b""):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(str(target), 0o755 if member.mode & 0o100 else 0o644)
            digests[rel] = digest.hexdigest()
        member = tar.next()
    return digests


def unpack(archive, dest):
    """Extract ``archive`` into ``dest``/<top>, hashing while writing; the directory is renamed into
    place only when every file matches SHA256SUMS and nothing is missing or unlisted."""
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(str(archive), "r:*") as tar:
        first = tar.next()
        if first is None:
            raise bundle.BundleError("%s is an empty archive" % archive)
        top = first.name.split("/", 1)[0]
        if not top.startswith("llmops-bundle-"):
            raise bundle.BundleError("%s does not start with an llmops-bundle-* directory: not a bundle" % archive)
        final = dest / top
        if final.exists():
            raise bundle.BundleError("%s already exists: remove it first, or unpack into another directory" % final)
        work = dest / (".%s.partial" % top)
        shutil.rmtree(str(work), ignore_errors=True)
        work.mkdir()
        try:
            digests = _extract(tar, first, top, work)
            sums = bundle.read_sums(str(work))[0]
            digests.pop(bundle.SUMS_NAME, None)
            result = {"changed": [(rel, digests[rel], sums[rel]) for rel in sorted(sums)
                                  if rel in digests and digests[rel] != sums[rel]],
                      "missing": sorted(set(sums) - set(digests)), "unlisted": sorted(set(digests) - set(sums))}
            message = bundle.describe(str(archive), result)
            if message:
                raise bundle.BundleError(message)
        except BaseException:
            shutil.rmtree(str(work), ignore_errors=True)
            raise
    _fsync(str(work))
    os.replace(str(work), str(final))
    _fsync(str(dest))
    return {"bundle_dir": str(final), "files": len(digests),
            "bytes": sum((final / rel).stat().st_size for rel in digests)}


def verify_dir(root, only):
    sums, sums_sha256 = bundle.read_sums(root)
    result = bundle.verify(root, sums, only or None)
    message = bundle.describe(root, result)
    if message:
        raise bundle.BundleError(message)
    return {"bundle_dir": root, "verified_bytes": result["bytes"], "sums_sha256": sums_sha256}


def main(argv):
    if len(argv) >= 2 and argv[0] == "verify":
        command, args = verify_dir, (argv[1], argv[2:])
    elif len(argv) == 3 and argv[0] in ("seal", "unpack"):
        command, args = {"seal": seal, "unpack": unpack}[argv[0]], argv[1:]
    else:
        sys.stderr.write(__doc__)
        return 2
    try:
        print(json.dumps(command(*args), sort_keys=True))
    except (bundle.BundleError, OSError, tarfile.TarError, ValueError) as exc:
        sys.stderr.write("bundle.py %s: %s\n" % (argv[0], exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
