"""PPTX, ODT, EPUB (zip + XML) and the hostile zip containers of every zip type (XLSX included):
each failure names the file, the problem and the fix, never a crash or an empty text."""

import os
import time
import zipfile

import pytest

from qa_api.kb import limits
from qa_api.kb.loaders import LoaderError, load_document
from tests.documents import (CONTRACT_ODT, GUIDE_CHAPTERS, HOLIDAYS_DOCX, RATES_ROWS, RUNBOOK_SLIDES, billion_laughs,
                             make_docx, make_epub, make_odt, make_pptx, make_xlsx, make_zip_bomb_docx, write_zip)

_P = ('xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
      'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"')
ODT_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')


def refused(path, rel=None):
    rel = rel or os.path.basename(str(path))
    with pytest.raises(LoaderError) as caught:
        load_document(str(path), rel)
    assert caught.value.file == rel and str(caught.value).startswith(rel + ": ")
    return caught.value.message


def test_pptx_slides_in_presentation_order_with_titles_tables_and_notes(tmp_path):
    path = make_pptx(tmp_path / "runbook.pptx", RUNBOOK_SLIDES, table=[["Level", "Response"], ["P1", "15 min"]])
    assert load_document(path, "runbook.pptx").split("\n\n") == [
        "# Slide 1: Incident runbook\nOperations team, 2024",
        "# Slide 2: Escalation\nPage the on-call engineer within 15 minutes of a P1 alert.\n"
        "Open a bridge call for every P1.\nLevel | Response\nP1 | 15 min\n"
        "Notes: Escalation is owned by the duty manager.",
        "# Slide 3: 数据备份\n核心数据库每天凌晨两点全量备份，备份保留九十天。\nNotes: 备份每季度做一次恢复演练。"]


def test_pptx_listing_one_slide_part_twice_is_refused(tmp_path):
    path = make_pptx(tmp_path / "loop.pptx", RUNBOOK_SLIDES)
    ids = "".join('<p:sldId id="%d" r:id="rId1"/>' % n for n in range(256, 100256))  # one slide, 100000 times
    path = _replace(path, "ppt/presentation.xml", '<p:presentation %s xmlns:r="http://schemas.openxmlformats.org/'
                    'officeDocument/2006/relationships"><p:sldIdLst>%s</p:sldIdLst></p:presentation>' % (_P, ids))
    assert refused(path).startswith("corrupt PPTX: slide 2 has no part of its own (rId1)")


def test_pptx_without_text_names_the_fix(tmp_path):
    path = make_pptx(tmp_path / "photos.pptx", [(None, [], None), (None, [], None)])
    assert refused(path).startswith("no text extracted: slides of pictures only have no text")


def test_odt_headings_lists_tables_and_spaces(tmp_path):
    path = make_odt(tmp_path / "contract.odt", CONTRACT_ODT + [("p", "two  spaces")])
    assert load_document(path, "contract.odt").split("\n\n") == [
        "# Service contract", "The supplier answers tickets within two working days.",
        "- Renewal: every twelve months", "## 违约责任", "逾期交付的，每日按合同金额的千分之一支付违约金。",
        "Level | Response\nP1 | 1 hour", "two spaces"]
    # text:s with an absurd count stays a few spaces (not a gigabyte)
    content = ('<office:document-content %s><office:body><office:text><text:p>a<text:s text:c="999999999"/>b'
               '</text:p></office:text></office:body></office:document-content>' % ODT_NS)
    assert load_document(make_odt(tmp_path / "s.odt", [], content_xml=content), "s.odt") == "a b"


def test_epub_chapters_in_spine_order_without_repeated_titles(tmp_path):
    path = make_epub(tmp_path / "guide.epub", GUIDE_CHAPTERS, title="Staff guide")
    assert load_document(path, "guide.epub").split("\n\n") == [
        "# Staff guide", "# Chapter 1: Onboarding", "New staff receive their badge from reception on the first morning.",
        "# 第二章 信息安全", "离开座位时必须锁定电脑屏幕。", "密码不得告诉任何人。"]


def test_epub_with_drm_or_without_package_is_refused(tmp_path):
    path = make_epub(tmp_path / "drm.epub", GUIDE_CHAPTERS)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("META-INF/encryption.xml", '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:'
                         'container"><EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#"><CipherData>'
                         '<CipherReference URI="OEBPS/text/chapter%202.xhtml"/></CipherData></EncryptedData>'
                         '</encryption>')
    assert refused(path) == "EPUB is DRM-protected (OEBPS/text/chapter 2.xhtml is encrypted): use a copy without DRM"
    path = write_zip(tmp_path / "bare.epub", {"OEBPS/a.xhtml": "<html/>"}, mimetype="application/epub+zip")
    assert refused(path) == ("not a valid EPUB: it has no META-INF/container.xml (a renamed file?): open it in "
                             "the e-book editor that made it (e.g. Calibre) and save it again as .epub")


# A broken document of each zip type: (name, a valid one, its main XML part, a root element for it)
ZIP_TYPES = [
    ("deck.pptx", lambda p: make_pptx(p, RUNBOOK_SLIDES), "ppt/presentation.xml",
     '<p:presentation %s><p:sldIdLst/>BOMB</p:presentation>' % _P, "PowerPoint or LibreOffice Impress"),
    ("book.xlsx", lambda p: make_xlsx(p, [("Rates", RATES_ROWS)]), "xl/workbook.xml",
     '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">BOMB</workbook>',
     "Excel or LibreOffice"),
    ("contract.odt", lambda p: make_odt(p, CONTRACT_ODT), "content.xml",
     '<office:document-content %s><office:body><office:text><text:p>BOMB</text:p></office:text></office:body>'
     '</office:document-content>' % ODT_NS, "LibreOffice Writer"),
    ("guide.epub", lambda p: make_epub(p, GUIDE_CHAPTERS), "OEBPS/content.opf",
     '<package xmlns="http://www.idpf.org/2007/opf"><metadata>BOMB</metadata></package>', "e-book editor"),
    ("report.docx", lambda p: make_docx(p, HOLIDAYS_DOCX) or p, "word/document.xml",
     '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r>'
     '<w:t>BOMB</w:t></w:r></w:p></w:body></w:document>', "Word or LibreOffice Writer"),
]
IDS = [t[0] for t in ZIP_TYPES]


def _replace(path, member, data):
    """Rewrite the zip at ``path`` with ``member`` replaced (or dropped when data is None)."""
    with zipfile.ZipFile(path) as archive:
        members = {i.filename: archive.read(i.filename) for i in archive.infolist()}
    members.pop(member)
    if data is not None:
        members[member] = data
    os.unlink(path)
    return write_zip(path, members)


@pytest.mark.parametrize("name,make,member,root,app", ZIP_TYPES, ids=IDS)
def test_not_a_zip_truncated_or_password_protected(tmp_path, name, make, member, root, app):
    kind, ext = name.rsplit(".", 1)[1].upper(), name.rsplit(".", 1)[1]
    (tmp_path / name).write_bytes(b"just text with the wrong extension")
    message = refused(tmp_path / name)
    assert message.startswith("corrupt or unreadable %s (not a zip container" % kind)
    assert "open it in " in message and app in message
    assert message.endswith("save it again as .%s" % ext)
    good = make(str(tmp_path / ("good." + ext)))
    with open(good, "rb") as handle:
        (tmp_path / name).write_bytes(handle.read()[:300])
    assert "not a zip container" in refused(tmp_path / name)
    # Office encrypts a password-protected file into an OLE compound file, no zip
    (tmp_path / name).write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)
    assert refused(tmp_path / name).startswith("%s is password-protected or an old binary" % kind)


@pytest.mark.parametrize("name,make,member,root,app", ZIP_TYPES, ids=IDS)
def test_missing_or_malformed_main_part(tmp_path, name, make, member, root, app):
    kind = name.rsplit(".", 1)[1].upper()
    by_library = kind in ("XLSX", "DOCX")  # openpyxl and python-docx read these: their own words
    path = _replace(make(str(tmp_path / name)), member, None)
    message = refused(path)
    assert message.startswith("corrupt or unreadable %s (" % kind if by_library else
                              "not a valid %s: it has no %s (a renamed file?)" % (kind, member))
    assert message.endswith("save it again as .%s" % kind.lower())
    path = _replace(make(str(tmp_path / ("b" + name))), member, "<unclosed><tag>")
    message = refused(path)
    assert message.startswith("corrupt or unreadable %s (" % kind if by_library else
                              "corrupt %s: %s is not well-formed XML" % (kind, member))
    assert message.endswith("save it again as .%s" % kind.lower())


@pytest.mark.parametrize("name,make,member,root,app", ZIP_TYPES, ids=IDS)
def test_entities_are_refused_fast_and_never_expanded(tmp_path, name, make, member, root, app):
    path = _replace(make(str(tmp_path / name)), member, billion_laughs(root))
    started = time.monotonic()
    message = refused(path)
    assert time.monotonic() - started < 5
    assert message.startswith("refused: the ") and "declares XML entities" in message
    # an external entity (XXE) is refused too; the file it names is never read
    xxe = root.replace("BOMB", "&xxe;")
    xxe = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>' + xxe
    path = _replace(make(str(tmp_path / ("x" + name))), member, xxe)
    assert "declares XML entities" in refused(path)


def test_entities_in_a_slide_or_an_epub_chapter_are_refused(tmp_path):
    slide = billion_laughs('<p:sld %s><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>BOMB</a:t></a:r></a:p>'
                           '</p:txBody></p:sp></p:spTree></p:cSld></p:sld>' % _P)
    path = make_pptx(tmp_path / "lol.pptx", RUNBOOK_SLIDES, slide_xml=slide)
    assert refused(path).startswith("refused: the part ppt/slides/slide3.xml declares XML entities")
    path = make_epub(tmp_path / "lol.epub", GUIDE_CHAPTERS)
    path = _replace(path, "OEBPS/text/chapter 2.xhtml", billion_laughs("<html><body><p>BOMB</p></body></html>"))
    assert refused(path).startswith("refused: the chapter OEBPS/text/chapter 2.xhtml declares XML entities")


@pytest.mark.parametrize("member", ["ppt/slides/slide1.xml", "xl/worksheets/sheet1.xml", "content.xml",
                                    "OEBPS/chapter1.xhtml", "word/document.xml"])
def test_zip_bombs_of_every_zip_type_are_refused_from_the_directory(tmp_path, member):
    """The builder's zip caps (qa_api.kb.limits) cover every zip type it reads."""
    ext = {"ppt": "pptx", "xl": "xlsx", "content.xml": "odt", "OEBPS": "epub", "word": "docx"}[member.split("/")[0]]
    assert "." + ext in limits.ZIP_EXTENSIONS
    path = make_zip_bomb_docx(tmp_path / ("bomb." + ext), 32 * 1024 * 1024, member_name=member)
    with open(path, "rb") as handle:
        with pytest.raises(limits.LimitError) as caught:
            limits.check_zip(handle, "bomb." + ext, 16 * 1024 * 1024, limits.DEFAULT_MAX_ZIP_RATIO)
    assert caught.value.file == "bomb." + ext
    assert "zip container expands to 33554" in str(caught.value) and "max_unzipped_bytes=16777216" in str(caught.value)
    with open(path, "rb") as handle:
        with pytest.raises(limits.LimitError, match="ratio .* over the cap max_zip_ratio=100"):
            limits.check_zip(handle, "bomb." + ext, limits.DEFAULT_MAX_UNZIPPED_BYTES, limits.DEFAULT_MAX_ZIP_RATIO)
