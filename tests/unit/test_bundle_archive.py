"""scripts/bundle.py: one archive written aside and renamed, unpacked only when every file matches."""
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bundle.py"
spec = importlib.util.spec_from_file_location("bundle_script", SCRIPT)
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)

ID = "sha256:" + "cd" * 32


def stage(tmp_path, name="llmops-bundle-0.1.0"):
    root = tmp_path / "stage" / name
    files = {"images/redis.tar": b"layers", "debs/Packages": b"Package: docker.io\n", "debs/docker.io.deb": b"deb",
             "wheels/controller/ansible.whl": b"whl", "collection/llmops-bluegreen-0.1.0.tar.gz": b"tgz"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    manifest = {"format": 1, "name": name, "version": "0.1.0", "commit": "abc",
                "images": {"redis": {"ref": "llmops/redis:0.1.0-a", "id": ID, "archive": "images/redis.tar"}},
                "debs": {"dir": "debs", "packages": ["docker.io"]},
                "wheels": {"controller": {"dir": "wheels/controller"}},
                "collection": {"file": "collection/llmops-bluegreen-0.1.0.tar.gz"}}
    (root / "bundle.json").write_text(json.dumps(manifest))
    return root


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_seal_unpack_verify_round_trip(tmp_path):
    root = stage(tmp_path)
    archive = tmp_path / "out" / "llmops-bundle-0.1.0.tar"
    archive.parent.mkdir()
    proc = run("seal", root, archive)
    assert proc.returncode == 0, proc.stderr
    sealed = json.loads(proc.stdout)
    assert sealed["archive"] == str(archive) and sealed["files"] == 7
    assert sealed["sums_sha256"] == hashlib.sha256((root / "SHA256SUMS").read_bytes()).hexdigest()
    assert not list(archive.parent.glob("*.partial"))
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    # Checksums and manifest come first; everything sits in one top directory.
    assert names[:2] == ["llmops-bundle-0.1.0/SHA256SUMS", "llmops-bundle-0.1.0/bundle.json"]
    assert all(n.startswith("llmops-bundle-0.1.0/") for n in names)
    # `sha256sum -c` agrees with the script: the format is the standard one.
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=root, check=False).returncode == 0

    proc = run("unpack", archive, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    unpacked = Path(json.loads(proc.stdout)["bundle_dir"])
    assert unpacked == tmp_path / "site" / "llmops-bundle-0.1.0"
    assert (unpacked / "images" / "redis.tar").read_bytes() == b"layers"
    assert run("verify", unpacked).returncode == 0

    # A second unpack over the first is refused rather than mixed into it.
    again = run("unpack", archive, tmp_path / "site")
    assert again.returncode == 1 and "already exists" in again.stderr

    (unpacked / "debs" / "docker.io.deb").write_bytes(b"tampered")
    proc = run("verify", unpacked, "debs")
    assert proc.returncode == 1 and "debs/docker.io.deb: content differs" in proc.stderr
    # The images were not touched: verifying them alone passes.
    assert run("verify", unpacked, "images").returncode == 0


def test_seal_refuses_a_stage_whose_manifest_names_a_missing_file(tmp_path):
    root = stage(tmp_path)
    (root / "images" / "redis.tar").unlink()
    proc = run("seal", root, tmp_path / "b.tar")
    assert proc.returncode == 1 and "archive images/redis.tar is not in SHA256SUMS" in proc.stderr
    assert not (tmp_path / "b.tar").exists() and not (tmp_path / "b.tar.partial").exists()


def test_an_interrupted_seal_leaves_no_archive_not_even_a_partial_one(tmp_path, monkeypatch):
    root = stage(tmp_path)
    archive = tmp_path / "llmops-bundle-0.1.0.tar"
    archive.write_bytes(b"the previous, complete bundle")

    def pack_then_fail(stage_dir, order, out):
        out.write_bytes(b"half")
        raise OSError("No space left on device")
    monkeypatch.setattr(script, "_pack", pack_then_fail)
    with pytest.raises(OSError, match="No space left"):
        script.seal(str(root), str(archive))
    assert archive.read_bytes() == b"the previous, complete bundle"
    assert not (tmp_path / "llmops-bundle-0.1.0.tar.partial").exists()


def rewrite(archive, out, change):
    """A copy of ``archive`` with ``change(name, data)`` applied to each member (None drops it)."""
    with tarfile.open(archive) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            data = change(member.name, data) if member.isfile() else data
            if member.isfile() and data is None:
                continue
            if data is not None:
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)


@pytest.mark.parametrize("change, named", [
    (lambda n, d: b"evil" if n.endswith("docker.io.deb") else d, "debs/docker.io.deb: content differs"),
    (lambda n, d: None if n.endswith("redis.tar") else d, "images/redis.tar: listed in SHA256SUMS but missing"),
])
def test_a_tampered_archive_is_refused_and_leaves_nothing_behind(tmp_path, change, named):
    archive = tmp_path / "llmops-bundle-0.1.0.tar"
    assert run("seal", stage(tmp_path), archive).returncode == 0
    bad = tmp_path / "bad.tar"
    rewrite(archive, bad, change)
    proc = run("unpack", bad, tmp_path / "site")
    assert proc.returncode == 1 and named in proc.stderr
    assert list((tmp_path / "site").iterdir()) == []


@pytest.mark.parametrize("name, kind, named", [
    ("llmops-bundle-0.1.0/../../etc/x", tarfile.REGTYPE, "not a plain relative path"),
    ("llmops-bundle-0.1.0/l", tarfile.SYMTYPE, "is not a file or directory (a link?)"),
    ("other/x", tarfile.REGTYPE, "is outside the bundle's directory"),
])
def test_unpack_refuses_links_and_paths_outside_the_bundle(tmp_path, name, kind, named):
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        top = tarfile.TarInfo("llmops-bundle-0.1.0")
        top.type = tarfile.DIRTYPE
        tar.addfile(top)
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
        tar.addfile(info, io.BytesIO(b""))
    proc = run("unpack", bad, tmp_path / "site")
    assert proc.returncode == 1 and named in proc.stderr
    assert list((tmp_path / "site").iterdir()) == []


def test_an_archive_that_is_no_bundle_is_refused(tmp_path):
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        tar.addfile(tarfile.TarInfo("README"), io.BytesIO(b""))
    proc = run("unpack", bad, tmp_path / "site")
    assert proc.returncode == 1 and "not a bundle" in proc.stderr
