"""Zip + XML documents: PPTX (slides in presentation order, with speaker notes), ODT and EPUB
(chapters in the spine order of the OPF), read with zipfile and lxml.

Why not python-pptx, odfpy, ebooklib: python-pptx pulls Pillow and XlsxWriter into the
image for text it reads as below, odfpy ships no wheel, ebooklib is AGPL. Their formats'
text is a few XML parts.

Hostile input: the builder judged the zip from its directory before (qa_api.kb.limits:
member count, unzipped size, ratio; zipfile never returns more than a member's declared
size). Every XML part is parsed without network, DTD loading or entity resolution, and
refused when it declares entities (office documents never do; billion laughs and external
references do). XHTML chapters go through the HTML converter, which expands no entities.
"""

import posixpath
import re
import urllib.parse
import zipfile
import zlib

from lxml import etree

from qa_api.kb.loaders import LoaderError, _decode

# kind -> (what the user opens the file with, extension to save as)
APPS = {
    "pptx": ("PowerPoint or LibreOffice Impress", "pptx"),
    "xlsx": ("Excel or LibreOffice Calc", "xlsx"),
    "docx": ("Word or LibreOffice Writer", "docx"),
    "odt": ("LibreOffice Writer", "odt"),
    "epub": ("the e-book editor that made it (e.g. Calibre)", "epub"),
}
HOSTILE_XML = ("the %s declares XML entities, which office documents never do (entity expansion or "
               "external file references): open it in %s and save it again as .%s")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_PROLOG_END = re.compile(rb"<!ENTITY|<[A-Za-z_]", re.IGNORECASE)  # an entity, or the root element's start
_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                          huge_tree=False, remove_comments=True, remove_pis=True)


def _resave(kind):
    app, ext = APPS[kind]
    return "open it in %s and save it again as .%s" % (app, ext)


def not_a_zip(kind, head, problem):
    """Why a document of a zip type is not a zip, and the fix."""
    if head.startswith(OLE_MAGIC):
        return ("%s is password-protected or an old binary .doc/.xls/.ppt under a new name (an OLE file, "
                "not a zip container): remove the password, or %s" % (kind.upper(), _resave(kind)))
    return "corrupt or unreadable %s (not a zip container: %s): %s" % (kind.upper(), problem, _resave(kind))


def open_zip(source, rel, kind):
    """zipfile.ZipFile over a path or an open binary file, or LoaderError."""
    head = b""
    try:
        if isinstance(source, str):
            with open(source, "rb") as handle:
                head = handle.read(8)
        else:
            source.seek(0)
            head = source.read(8)
            source.seek(0)
        return zipfile.ZipFile(source)
    except OSError as exc:
        raise LoaderError(rel, "cannot read: %s" % (exc.strerror or exc)) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise LoaderError(rel, not_a_zip(kind, head, exc)) from None


def read_member(archive, name, rel, kind, required=True):
    """The bytes of one member (None when absent and not required), or LoaderError."""
    try:
        return archive.read(name)
    except KeyError:
        if not required:
            return None
        raise LoaderError(rel, "not a valid %s: it has no %s (a renamed file?): %s"
                          % (kind.upper(), name, _resave(kind))) from None
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError, OSError, ValueError) as exc:
        # NotImplementedError: a compression method zipfile lacks (a RuntimeError, so caught first)
        raise LoaderError(rel, "corrupt %s: %s cannot be extracted (%s): %s"
                          % (kind.upper(), name, exc, _resave(kind))) from None
    except RuntimeError as exc:  # zipfile: "File ... is encrypted, password required"
        raise LoaderError(rel, "%s is encrypted inside the %s (%s): save a copy without a password"
                          % (name, kind.upper(), exc)) from None


def parse_xml(data, rel, kind, name):
    """An XML part parsed by the hardened parser, or LoaderError."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        if "amplification" in str(exc) or "loop" in str(exc):  # libxml2's own guard against entity bombs
            raise LoaderError(rel, "refused: " + HOSTILE_XML % (
                "part " + name, APPS[kind][0], APPS[kind][1])) from None
        raise LoaderError(rel, "corrupt %s: %s is not well-formed XML (%s): %s"
                          % (kind.upper(), name, exc, _resave(kind))) from None
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and list(dtd.entities()):
        raise LoaderError(rel, "refused: " + HOSTILE_XML % ("part " + name, APPS[kind][0], APPS[kind][1]))
    return root


def refuse_entities(archive, rel, kind):
    """Refuse a package whose XML parts declare entities, reading only up to each root element:
    for the parts a library parses (openpyxl, python-docx), whose parsers leave them unexpanded
    (a silently missing text) or fail with a message that names no cause."""
    for info in archive.infolist():
        if not info.filename.endswith((".xml", ".rels")):
            continue
        try:
            with archive.open(info) as member:
                tail = b""
                for block in iter(lambda: member.read(65536), b""):
                    found = _PROLOG_END.search(tail + block)
                    if found and found.group(0).upper() == b"<!ENTITY":
                        raise LoaderError(rel, "refused: " + HOSTILE_XML % (
                            "part " + info.filename, APPS[kind][0], APPS[kind][1]))
                    if found:
                        break
                    tail = block[-16:]
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError) as exc:
            raise LoaderError(rel, "corrupt %s: %s cannot be extracted (%s): %s"
                              % (kind.upper(), info.filename, exc, _resave(kind))) from None


def _local(element):
    return etree.QName(element).localname if isinstance(element.tag, str) else None


def _relationships(archive, part, rel, kind):
    """{id: (type, target member)} of an OPC part (its _rels/<name>.rels)."""
    folder, name = posixpath.split(part)
    data = read_member(archive, posixpath.join(folder, "_rels", name + ".rels"), rel, kind, required=False)
    targets = {}
    if data is None:
        return targets
    for item in parse_xml(data, rel, kind, name + ".rels").iter("{*}Relationship"):
        if item.get("TargetMode") == "External" or not item.get("Target"):
            continue
        target = item.get("Target")
        path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        targets[item.get("Id")] = (item.get("Type", "").rsplit("/", 1)[-1], path)
    return targets


def _drawing_text(paragraph):
    return "".join((node.text or "") if _local(node) == "t" else "\n"
                   for node in paragraph.iter("{*}t", "{*}br")).strip()


def _shapes_text(root, placeholders_skipped):
    """(title, [lines]) of a slide or notes page, shapes in document order (groups included)."""
    title, lines = None, []
    for shape in root.iter("{*}sp", "{*}tbl"):
        if _local(shape) == "tbl":
            for row in shape.iter("{*}tr"):
                cells = [" ".join(_drawing_text(p) for p in cell.iter("{*}p")).strip()
                         for cell in row.iter("{*}tc")]
                if any(cells):
                    lines.append(" | ".join(cells))
            continue
        placeholder = next(shape.iter("{*}ph"), None)
        role = placeholder.get("type", "body") if placeholder is not None else None
        if role in placeholders_skipped:
            continue
        text = "\n".join(t for t in (_drawing_text(p) for p in shape.iter("{*}p")) if t)
        if not text:
            continue
        if role in ("title", "ctrTitle") and title is None:
            title = " ".join(text.split())
        else:
            lines.append(text)
    return title, lines


def load_pptx(source, rel):
    with open_zip(source, rel, "pptx") as archive:
        presentation = "ppt/presentation.xml"
        root = parse_xml(read_member(archive, presentation, rel, "pptx"), rel, "pptx", presentation)
        parts = _relationships(archive, presentation, rel, "pptx")
        slides, seen = [], set()
        for number, slide_id in enumerate(root.iter("{*}sldId"), 1):
            ref = next((v for k, v in slide_id.attrib.items() if k.endswith("}id")), None)
            # one part listed a million times would be parsed a million times
            if ref not in parts or parts[ref][1] in seen:
                raise LoaderError(rel, "corrupt PPTX: slide %d has no part of its own (%s): %s"
                                  % (number, ref, _resave("pptx")))
            part = parts[ref][1]
            seen.add(part)
            title, lines = _shapes_text(parse_xml(read_member(archive, part, rel, "pptx"), rel, "pptx", part),
                                        ("sldNum", "dt", "ftr"))
            for rel_type, notes in _relationships(archive, part, rel, "pptx").values():
                if rel_type == "notesSlide":
                    body = _shapes_text(parse_xml(read_member(archive, notes, rel, "pptx"), rel, "pptx", notes),
                                        ("sldNum", "dt", "ftr", "hdr", "sldImg", "title"))[1]
                    if body:
                        lines.append("Notes: " + "\n".join(body))
            if title or lines:
                heading = "# Slide %d: %s" % (number, title) if title else "# Slide %d" % number
                slides.append("\n".join([heading] + lines))
    return "\n\n".join(slides)


def _odf_inline(element, out):
    """Text of an ODF paragraph: spaces (text:s c="n"), tabs and line breaks kept; notes left out."""
    name = _local(element)
    if name == "s":
        count = element.get(_TEXT + "c", "1")
        out.append(" " * min(int(count) if count.isdigit() else 1, 100))  # c="10**9" would be gigabytes
    elif name == "tab":
        out.append("\t")
    elif name == "line-break":
        out.append("\n")
    elif name not in ("note", "annotation", None):
        out.append(element.text or "")
        for child in element:
            _odf_inline(child, out)
            out.append(child.tail or "")


def _odf_blocks(element, out, prefix="", in_cell=False):
    """Paragraphs, "# headings" (outline level), "- " list items, "cell | cell" table rows."""
    name = _local(element)
    if name in ("h", "p"):
        parts = []
        _odf_inline(element, parts)
        text = "".join(parts).strip()
        if text and name == "h" and not in_cell:
            level = element.get(_TEXT + "outline-level") or "1"
            level = min(max(int(level) if level.isdigit() else 1, 1), 6)
            out.append("\n\n%s %s\n\n" % ("#" * level, " ".join(text.split())))
        elif text:
            out.append("%s%s%s" % (prefix, text, "\n" if prefix else "\n\n"))
    elif name == "table-row":
        cells = []
        for cell in element:
            if _local(cell) in ("table-cell", "covered-table-cell"):
                parts = []
                for child in cell:
                    _odf_blocks(child, parts, in_cell=True)
                cells.append(" ".join("".join(parts).split()))
        if any(cells):
            out.append(" | ".join(cells) + "\n")
    elif name in ("list-item", "list-header"):
        for child in element:
            _odf_blocks(child, out, "- ", in_cell)
    elif name not in ("tracked-changes", "sequence-decls", "variable-decls", None):
        if name == "table":
            out.append("\n")
        for child in element:
            _odf_blocks(child, out, prefix, in_cell)
        if name == "table":
            out.append("\n")


def load_odt(source, rel):
    with open_zip(source, rel, "odt") as archive:
        root = parse_xml(read_member(archive, "content.xml", rel, "odt"), rel, "odt", "content.xml")
    out = []
    for body in root.iter("{*}body"):
        _odf_blocks(body, out)
    return "".join(out)


def _opf_path(archive, rel):
    container = "META-INF/container.xml"
    root = parse_xml(read_member(archive, container, rel, "epub"), rel, "epub", container)
    for rootfile in root.iter("{*}rootfile"):
        if rootfile.get("media-type", "application/oebps-package+xml") == "application/oebps-package+xml" \
                and rootfile.get("full-path"):
            return rootfile.get("full-path")
    raise LoaderError(rel, "not a valid EPUB: %s names no package document (OPF): %s"
                      % (container, _resave("epub")))


def _encrypted(archive, rel):
    """Members listed in META-INF/encryption.xml (DRM; fonts may be obfuscated harmlessly)."""
    data = read_member(archive, "META-INF/encryption.xml", rel, "epub", required=False)
    if data is None:
        return set()
    root = parse_xml(data, rel, "epub", "META-INF/encryption.xml")
    return {urllib.parse.unquote(ref.get("URI", "")) for ref in root.iter("{*}CipherReference")}


def load_epub(source, rel):
    from qa_api.kb.html_text import html_to_text

    with open_zip(source, rel, "epub") as archive:
        opf = _opf_path(archive, rel)
        package = parse_xml(read_member(archive, opf, rel, "epub"), rel, "epub", opf)
        folder = posixpath.dirname(opf)
        items = {}
        for item in package.iter("{*}item"):
            href = urllib.parse.unquote(item.get("href", "").split("#", 1)[0])
            media = "nav" if "nav" in item.get("properties", "").split() else item.get("media-type", "")
            items[item.get("id")] = (posixpath.normpath(posixpath.join(folder, href)), media)
        encrypted = _encrypted(archive, rel)
        title = next((" ".join(t.text.split()) for t in package.iter("{*}title") if t.text and t.text.strip()), "")
        chapters = ["# " + title] if title else []  # the heading of what comes before a chapter's own
        for itemref in package.iter("{*}itemref"):
            member, media = items.pop(itemref.get("idref"), (None, ""))  # pop: each chapter read once
            if member is None or media not in ("application/xhtml+xml", "text/html"):
                continue  # no chapter: the table of contents (nav), an image, missing from the manifest
            if member in encrypted:
                raise LoaderError(rel, "EPUB is DRM-protected (%s is encrypted): use a copy without DRM" % member)
            data = read_member(archive, member, rel, "epub")
            if _ENTITY_DECLARATION.search(data):
                raise LoaderError(rel, "refused: " + HOSTILE_XML % ("chapter " + member, APPS["epub"][0], "epub"))
            chapters.append(html_to_text(_decode(data, rel), title=False))
    return "\n\n".join(c for c in chapters if c)
