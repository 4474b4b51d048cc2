"""HTML -> text that keeps its structure (lxml).

Blocks (p, div, li, dt, dd, tr, ...) end a line, so table cells and definition lists
are not glued together: a table row becomes "cell | cell", one row a line; list items
"- item"; h1-h6 become Markdown headings ("## Title", which the builder records as the
chunk's heading); pre is kept verbatim.
"""

import re

import lxml.html
from lxml import etree

SKIP = {"script", "style", "noscript", "template", "head", "iframe", "object", "svg", "canvas"}
# one item a line: rows, list items, definition terms and descriptions, line breaks
LINES = {"li", "dt", "dd", "tr", "caption", "figcaption", "summary", "option"}
BREAK = "\x00"  # never in parsed text: lxml refuses NUL
BLOCKS = LINES | {
    "address", "article", "aside", "blockquote", "body", "center", "details", "dialog", "dir",
    "div", "dl", "fieldset", "figure", "footer", "form", "header", "hgroup", "hr", "html",
    "legend", "main", "menu", "nav", "ol", "p", "section", "table", "tbody", "td", "tfoot", "th",
    "thead", "title", "ul",
}
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>")


def _inline(element):
    """An element's text on one line (whitespace collapsed, scripts left out)."""
    parts = []
    for node in element.iter():
        if node is not element and isinstance(node.tag, str) and node.tag.lower() in SKIP:
            continue
        if node.text and isinstance(node.tag, str):
            parts.append(node.text)
        if node is not element and node.tail:
            parts.append(node.tail)
    return " ".join(" ".join(parts).split())


class _Renderer:
    def __init__(self):
        self.blocks = []  # [(kind, text)]: kind "line", "para" or "pre"
        self.line = []
        self.kinds = ["para"]

    def flush(self):
        # BREAK marks a <br>: one line each side of it
        text = "\n".join(filter(None, (" ".join(p.split()) for p in "".join(self.line).split(BREAK))))
        if text:
            self.blocks.append((self.kinds[-1], text))
        self.line = []

    def add(self, text):
        if text:
            self.line.append(text)

    def walk(self, element):
        tag = element.tag.lower() if isinstance(element.tag, str) else None
        if tag is None or tag in SKIP:  # comments, processing instructions, scripts
            return
        if tag in HEADINGS:
            self.flush()
            title = _inline(element)
            if title:
                self.blocks.append(("para", "#" * HEADINGS[tag] + " " + title))
        elif tag == "pre":
            self.flush()
            text = element.text_content().strip("\n")
            if text.strip():
                self.blocks.append(("pre", text))
        elif tag == "tr":
            self.flush()
            cells = [_inline(c) for c in element
                     if isinstance(c.tag, str) and c.tag.lower() in ("td", "th")]
            if any(cells):
                self.blocks.append(("line", " | ".join(cells)))
        elif tag == "br":
            self.add(BREAK)
        elif tag in BLOCKS:
            self.flush()
            self.kinds.append("line" if tag in LINES else "para")
            if tag == "li":
                self.add("- ")
            self._children(element)
            self.flush()
            self.kinds.pop()
        else:  # inline: a, span, b, code, ...
            self._children(element)

    def _children(self, element):
        self.add(element.text)
        for child in element:
            self.walk(child)
            self.add(child.tail)

    def text(self):
        out, previous = [], None
        for kind, text in self.blocks:
            if previous is not None:
                out.append("\n" if kind == previous == "line" else "\n\n")
            out.append(text)
            previous = kind
        return "".join(out)


def html_to_text(markup, title=True):
    """Structured text of an HTML document ("" when it has none); ``title=False`` leaves out
    <title> (an EPUB chapter's is usually the book's)."""
    markup = _XML_DECLARATION.sub("", markup, count=1)
    if not markup.strip():
        return ""
    try:
        root = lxml.html.document_fromstring(markup)
    except (etree.ParserError, ValueError):
        return ""
    renderer = _Renderer()
    head = root.find("head")
    heading = head.find("title") if head is not None and title else None
    if heading is not None and _inline(heading):
        renderer.blocks.append(("para", _inline(heading)))
    renderer.walk(root)
    renderer.flush()
    return renderer.text()
