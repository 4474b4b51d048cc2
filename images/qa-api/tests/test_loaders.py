import pytest

from qa_api.kb.loaders import LoaderError, doc_type, load_document
from tests.documents import (EXPENSES_ZH, HOLIDAYS_DOCX, POLICY_MD, REMOTE_HTML, SECURITY_PDF_LINES,
                             make_docx, make_pdf)


def put(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


def test_types_by_extension_case_insensitive():
    assert doc_type("a.TXT") == "txt"
    assert doc_type("x/y.markdown") == "md"
    assert doc_type("page.HTM") == "html"
    assert doc_type("f.pdf") == "pdf"
    assert doc_type("f.docx") == "docx"
    assert doc_type("f.doc") is None
    assert doc_type("data.xls") is None
    for name, kind in (("deck.PPTX", "pptx"), ("book.xlsx", "xlsx"), ("t.CSV", "csv"), ("r.jsonl", "jsonl"),
                       ("b.epub", "epub"), ("c.odt", "odt")):
        assert doc_type(name) == kind


def test_markdown_and_utf8_text(tmp_path):
    text = load_document(put(tmp_path, "policy.md", POLICY_MD), "policy.md")
    assert "25 days of paid annual leave" in text
    assert load_document(put(tmp_path, "zh.txt", EXPENSES_ZH), "zh.txt").startswith("差旅报销制度。")


def test_gb18030_chinese_text(tmp_path):
    path = put(tmp_path, "legacy.txt", EXPENSES_ZH.encode("gb18030"))
    assert "住宿标准为每晚不超过五百元" in load_document(path, "legacy.txt")


def test_html_text_without_scripts_and_styles(tmp_path):
    text = load_document(put(tmp_path, "remote.html", REMOTE_HTML), "remote.html")
    assert "manager's approval" in text  # entity decoded
    assert "Use the company VPN" in text
    assert "do not index" not in text and "color: red" not in text
    assert "<p>" not in text


def test_pdf_text(tmp_path):
    text = load_document(put(tmp_path, "security.pdf", make_pdf(SECURITY_PDF_LINES)), "security.pdf")
    assert "at least 14 characters" in text


def test_docx_paragraphs_and_tables(tmp_path):
    path = str(tmp_path / "holidays.docx")
    make_docx(path, HOLIDAYS_DOCX, table=[["Holiday", "Pay"], ["National Day", "triple"]])
    text = load_document(path, "holidays.docx")
    assert "triple pay" in text
    assert "National Day | triple" in text


@pytest.mark.parametrize("name,data,message", [
    ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage", "PDF"),
    ("broken.docx", b"PK\x03\x04 this is not a zip archive", "DOCX"),
    ("fake.docx", b"plain text pretending to be a docx", "DOCX"),
    ("empty.txt", b"   \n\n  ", "no text extracted"),
    ("binary.txt", b"\x00\x01\x02\xff\xfe" * 100, "binary"),
    ("blank.pdf", make_pdf([]), "no text extracted"),
])
def test_bad_documents_raise_an_error_naming_the_file(tmp_path, name, data, message):
    path = put(tmp_path, name, data)
    with pytest.raises(LoaderError) as caught:
        load_document(path, "sub/" + name)
    assert caught.value.file == "sub/" + name
    assert "sub/" + name in str(caught.value)
    assert message in caught.value.message


def test_unreadable_file_names_the_file(tmp_path):
    with pytest.raises(LoaderError) as caught:
        load_document(str(tmp_path / "missing.md"), "missing.md")
    assert caught.value.file == "missing.md"
    assert "cannot read" in caught.value.message
