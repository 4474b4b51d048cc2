import os

import pytest

from qa_api.fingerprint import FingerprintError, fingerprint_dir

# Vectors computed independently: printf "%s\0%s\n" rel sha ... | sha256sum
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
THREE_FILES = "871e63218d814c60a7a31e9f4eb4b8f0ebb33449d89adab3b1032d7dc8aaee65"
WITH_CHINESE_PATH = "3ca19273e0250ea4a24dfa25b57be3cb3b228a71a2f2474a0d779159c9db4afc"


def write(root, rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def test_empty_directory_is_sha256_of_nothing(tmp_path):
    assert fingerprint_dir(str(tmp_path)) == EMPTY


def test_vector_excludes_only_top_level_manifest(tmp_path):
    write(tmp_path, "a.txt", b"hello\n")
    write(tmp_path, "sub/b.md", b"x")
    write(tmp_path, "sub/manifest.json", b"{}")  # not directly in D: counted
    write(tmp_path, "manifest.json", b'{"checksum": "anything"}')  # excluded
    assert fingerprint_dir(str(tmp_path)) == THREE_FILES


def test_vector_sorts_by_unicode_path(tmp_path):
    write(tmp_path, "文档/说明.txt", "中文".encode("utf-8"))
    write(tmp_path, "sub/manifest.json", b"{}")
    write(tmp_path, "sub/b.md", b"x")
    write(tmp_path, "a.txt", b"hello\n")
    assert fingerprint_dir(str(tmp_path)) == WITH_CHINESE_PATH


def test_manifest_change_keeps_checksum_content_change_does_not(tmp_path):
    write(tmp_path, "a.txt", b"hello\n")
    write(tmp_path, "manifest.json", b"{}")
    before = fingerprint_dir(str(tmp_path))
    write(tmp_path, "manifest.json", b'{"other": 1}')
    assert fingerprint_dir(str(tmp_path)) == before
    write(tmp_path, "a.txt", b"hello!\n")
    assert fingerprint_dir(str(tmp_path)) != before


def test_symlink_is_an_error_naming_it(tmp_path):
    write(tmp_path, "a.txt", b"hello\n")
    os.symlink(str(tmp_path / "a.txt"), str(tmp_path / "link.txt"))
    with pytest.raises(FingerprintError, match="link.txt"):
        fingerprint_dir(str(tmp_path))


def test_symlinked_directory_is_an_error(tmp_path):
    write(tmp_path, "real/a.txt", b"hello\n")
    os.symlink(str(tmp_path / "real"), str(tmp_path / "alias"))
    with pytest.raises(FingerprintError, match="alias"):
        fingerprint_dir(str(tmp_path))
