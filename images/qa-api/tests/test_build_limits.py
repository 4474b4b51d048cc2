"""The builder refuses hostile input on its own (defence in depth behind kb_build's checks):
symlinks, paths outside --docs, documents over the size caps, zip bombs judged from the zip directory."""

import json
import os
import subprocess
import sys
import time

import pytest

from qa_api.config import default_embed_model
from qa_api.kb import limits
from tests.conftest import EMBED_NAME
from tests.documents import make_zip_bomb_docx


def build(docs, out, *extra):
    cmd = [sys.executable, "-m", "qa_api.kb.build", "--docs", str(docs), "--out", str(out), "--name", "kb",
           "--version", "0123456789ab", "--embed-model", default_embed_model(), "--embed-name", EMBED_NAME,
           "--cache", str(out) + ".sqlite"] + list(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "ok.md").write_text("# Fine\n\nThis document is fine.\n")
    return root


def test_zip_bomb_docx_is_refused_before_parsing(docs, tmp_path):
    make_zip_bomb_docx(docs / "report.docx")
    started = time.monotonic()
    code, result = build(docs, tmp_path / "out")
    assert time.monotonic() - started < 20  # python start-up only: nothing is inflated, no model loaded
    assert code == 2 and result["file"] == "report.docx"
    assert "zip container expands to" in result["error"]
    assert "max_unzipped_bytes=%d" % limits.DEFAULT_MAX_UNZIPPED_BYTES in result["error"]
    assert "knowledge_base_max_unzipped_bytes" in result["error"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name,member", [("deck.pptx", "ppt/slides/slide1.xml"), ("book.xlsx", "xl/sharedStrings.xml"),
                                         ("guide.epub", "OEBPS/c1.xhtml"), ("contract.odt", "content.xml")])
def test_zip_bombs_of_the_other_zip_types_are_refused_too(docs, tmp_path, name, member):
    make_zip_bomb_docx(docs / name, 300 * 1024 * 1024, member_name=member)
    code, result = build(docs, tmp_path / "out")
    assert code == 2 and result["file"] == name
    assert result["error"].startswith("%s: zip container expands to 3145728" % name)  # + [Content_Types].xml
    assert "max_unzipped_bytes=%d" % limits.DEFAULT_MAX_UNZIPPED_BYTES in result["error"]


def test_ratio_cap_and_per_file_cap(docs, tmp_path):
    make_zip_bomb_docx(docs / "small.docx", 16 * 1024 * 1024)
    code, result = build(docs, tmp_path / "out")
    assert code == 2 and result["file"] == "small.docx" and "max_zip_ratio=100" in result["error"]
    os.unlink(docs / "small.docx")
    (docs / "big.txt").write_text("x" * 5000)
    code, result = build(docs, tmp_path / "out", "--max-file-bytes=4096")
    assert code == 2 and result["file"] == "big.txt"
    assert "big.txt is 5000 bytes, over the cap max_file_bytes=4096" in result["error"]
    code, result = build(docs, tmp_path / "out", "--max-total-bytes=1000")
    assert code == 2 and "over the cap max_total_bytes=1000" in result["error"]


def test_symlink_is_refused_naming_it(docs, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("kbsafe-secret-token\n")
    os.symlink(secret, docs / "notes.txt")
    code, result = build(docs, tmp_path / "out")
    assert code == 2 and "notes.txt" in result["error"] and "symlink" in result["error"]
    assert not (tmp_path / "out").exists()


def test_open_inside_refuses_links_and_escapes(docs, tmp_path):
    (tmp_path / "outside.txt").write_text("outside\n")
    os.symlink(tmp_path / "outside.txt", docs / "link.txt")
    with pytest.raises(limits.LimitError, match="link.txt is a symlink"):
        limits.open_inside(str(docs), "link.txt")
    with pytest.raises(limits.LimitError, match="outside the documents directory"):
        limits.open_inside(str(docs), "../outside.txt")
    handle, size = limits.open_inside(str(docs), "ok.md")
    with handle:
        assert size == len(handle.read())
