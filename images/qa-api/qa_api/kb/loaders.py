"""Text extraction for the supported document types.

Every failure raises LoaderError naming the file, the problem and the fix, so the
builder can report exactly which input to fix. This module needs only the standard
library at import (kb_build's identity query and the collection's contract test load
it): the parsers of the other types are imported when a document of theirs is read.
Tables and records (csv, xlsx, jsonl) are in qa_api.kb.tabular, the zip + XML formats
(pptx, odt, epub) in qa_api.kb.office.
"""

import importlib
import os
import re
import zipfile

# extension -> manifest "type"
SUPPORTED = {
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".epub": "epub",
    ".odt": "odt",
}


class LoaderError(Exception):
    def __init__(self, file, message):
        super().__init__("%s: %s" % (file, message))
        self.file = file
        self.message = message


def doc_type(path):
    """Manifest type of a path, or None when the extension is not supported."""
    return SUPPORTED.get(os.path.splitext(path)[1].lower())


def _decode(data, rel):
    # A byte-order mark decides (Windows Notepad and Excel's "Unicode text" write UTF-16).
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise LoaderError(rel, "starts with a UTF-16 byte-order mark but is not valid UTF-16: "
                                   "save it again as UTF-8") from None
    if b"\x00" in data[:8192]:
        raise LoaderError(rel, "binary content, not text (save it as UTF-8 text, or give it the "
                               "extension of its real type)")
    # UTF-8 first; GB18030 is the common legacy encoding of Chinese documents.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise LoaderError(rel, "not valid UTF-8 or GB18030 text: save it again as UTF-8")


def _read_bytes(path, rel):
    if not isinstance(path, str):  # an open binary file (the builder opens without following links)
        return path.read()
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise LoaderError(rel, "cannot read: %s" % exc.strerror) from None


def _normalize(text, spaces=True):
    """Unix newlines, at most one blank line; spaces=False keeps runs of spaces and
    indentation (the HTML loader has collapsed them already, except in pre)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if spaces:
        text = re.sub(r"[ \t\f\v\u00a0]+", " ", text)
        text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def load_text(path, rel):
    return _decode(_read_bytes(path, rel), rel)


def load_html(path, rel):
    from qa_api.kb.html_text import html_to_text

    return html_to_text(_decode(_read_bytes(path, rel), rel))


def load_pdf(path, rel):
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoaderError(rel, "PDF is encrypted: save a copy without a password")
        return "\n\n".join((page.extract_text() or "") for page in reader.pages)
    except LoaderError:
        raise
    except OSError as exc:
        raise LoaderError(rel, "cannot read: %s" % (exc.strerror or exc)) from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise LoaderError(rel, "corrupt or unreadable PDF (%s)" % exc) from None


def load_docx(path, rel):
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from lxml.etree import XMLSyntaxError

    from qa_api.kb.office import open_zip, refuse_entities

    with open_zip(path, rel, "docx") as archive:  # python-docx would leave entities unexpanded, silently
        refuse_entities(archive, rel, "docx")
    if not isinstance(path, str):
        path.seek(0)
    try:
        document = docx.Document(path)
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError) as exc:
        raise LoaderError(rel, "corrupt or unreadable DOCX (%s): open it in Word or LibreOffice Writer and "
                               "save it again as .docx" % exc) from None
    except OSError as exc:
        raise LoaderError(rel, "cannot read: %s" % (exc.strerror or exc)) from None
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n\n".join(parts)


# type -> loader(path or open binary file, rel); "module:function" is imported on first use.
_LOADERS = {
    "txt": load_text,
    "md": load_text,
    "html": load_html,
    "pdf": load_pdf,
    "docx": load_docx,
    "pptx": "qa_api.kb.office:load_pptx",
    "odt": "qa_api.kb.office:load_odt",
    "epub": "qa_api.kb.office:load_epub",
    "xlsx": "qa_api.kb.tabular:load_xlsx",
    "csv": "qa_api.kb.tabular:load_csv",
    "jsonl": "qa_api.kb.tabular:load_jsonl",
}

# What to do about a document without text, by type.
_REMOVE = "or remove it from the documents directory"
_EMPTY_FIXES = {
    "pdf": "a scanned PDF has no text layer: run OCR on it first (e.g. ocrmypdf), " + _REMOVE,
    "pptx": "slides of pictures only have no text: add the text or speaker notes, " + _REMOVE,
    "xlsx": ("every sheet is empty (a formula counts by the value saved with it: save the workbook "
             "in Excel or LibreOffice once), " + _REMOVE),
    "epub": "its chapters have no text (pictures only?): " + _REMOVE,
}


def _loader(kind):
    loader = _LOADERS[kind]
    if isinstance(loader, str):
        module, name = loader.split(":")
        loader = getattr(importlib.import_module(module), name)
    return loader


def load_document(path, rel=None, handle=None):
    """Return the normalized text of a supported document, or raise LoaderError.

    ``handle``: the document already open in binary mode (read from it instead of ``path``).
    """
    rel = rel or os.path.basename(path)
    kind = doc_type(path)
    if kind is None:
        raise LoaderError(rel, "unsupported file type")
    text = _normalize(_loader(kind)(path if handle is None else handle, rel),
                      spaces=kind not in ("html", "epub"))
    if not text:
        raise LoaderError(rel, "no text extracted: %s" % _EMPTY_FIXES.get(kind, "add its content " + _REMOVE))
    return text
