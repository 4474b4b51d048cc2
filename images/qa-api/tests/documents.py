"""Real sample documents of every supported type, written by the tests themselves."""

import os

POLICY_MD = """# Leave policy

Every employee gets 25 days of paid annual leave per calendar year. Unused leave
can be carried over until March 31 of the following year; after that it expires.

## Sick leave

Sick leave is not counted against annual leave. From the fourth day of sickness a
doctor's certificate must be sent to the HR department.
"""

REMOTE_HTML = """<!doctype html><html><head><title>Remote work</title>
<style>body { color: red; }</style><script>var secret = "do not index";</script></head>
<body><h1>Remote work rules</h1>
<p>Remote work is allowed up to three days per week with the manager&#39;s approval.</p>
<ul><li>Use the company VPN for all remote access.</li><li>Laptops must be encrypted.</li></ul>
</body></html>"""

EXPENSES_ZH = ("差旅报销制度。员工出差产生的交通费用可以全额报销，发票必须在出差结束后三十天内提交给财务部。"
               "住宿标准为每晚不超过五百元；超过标准的部分由员工自行承担。\n\n"
               "餐饮补贴为每天一百元，无需提供发票。出差前需要在系统中提交申请并获得部门经理批准。")

SECURITY_PDF_LINES = [
    "Information security policy.",
    "Passwords must be at least 14 characters long and rotated every 180 days.",
    "Report phishing emails to the security team within one hour.",
]

HOLIDAYS_DOCX = [
    "Public holidays",
    "The office is closed on New Year's Day, Labour Day and National Day.",
    "Employees working on a public holiday receive triple pay.",
]


def _pdf_escape(text):
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(lines):
    """A minimal valid one-page PDF whose text pypdf can extract."""
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        ops.append("(%s) Tj T*" % _pdf_escape(line))
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def make_docx(path, paragraphs, table=None):
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(path)


def write_corpus(root):
    """The sample knowledge base: md, html, Chinese txt, pdf, docx and one skipped file (.xls)."""
    os.makedirs(os.path.join(root, "hr"), exist_ok=True)
    with open(os.path.join(root, "policy.md"), "w", encoding="utf-8") as f:
        f.write(POLICY_MD)
    with open(os.path.join(root, "hr", "remote.html"), "w", encoding="utf-8") as f:
        f.write(REMOTE_HTML)
    with open(os.path.join(root, "expenses.txt"), "w", encoding="utf-8") as f:
        f.write(EXPENSES_ZH)
    with open(os.path.join(root, "security.pdf"), "wb") as f:
        f.write(make_pdf(SECURITY_PDF_LINES))
    make_docx(os.path.join(root, "holidays.docx"), HOLIDAYS_DOCX,
              table=[["Holiday", "Pay"], ["National Day", "triple"]])
    with open(os.path.join(root, "notes.xls"), "wb") as f:  # old binary Excel: not read
        f.write(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    return root


def make_zip_bomb_docx(path, expanded_bytes=1024 ** 3, member_name="word/document.xml"):
    """A DOCX whose word/document.xml is ``expanded_bytes`` of zeros (1 GiB deflates to about 1 MB);
    another ``member_name`` makes the bomb of another zip type (ppt/slides/slide1.xml, ...)."""
    import zipfile

    block = b"\0" * (4 * 1024 * 1024)
    with zipfile.ZipFile(str(path), "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open(member_name, "w", force_zip64=True) as member:
            left = expanded_bytes
            while left > 0:
                member.write(block[:min(left, len(block))])
                left -= len(block)
    return path


# --- the table, record and zip + XML types (real files, written part by part) ---

RUNBOOK_SLIDES = [  # (title, body paragraphs, speaker notes)
    ("Incident runbook", ["Operations team, 2024"], None),
    ("Escalation", ["Page the on-call engineer within 15 minutes of a P1 alert.",
                    "Open a bridge call for every P1."], "Escalation is owned by the duty manager."),
    ("数据备份", ["核心数据库每天凌晨两点全量备份，备份保留九十天。"], "备份每季度做一次恢复演练。"),
]
RATES_ROWS = [["Product", "Rate", "Term", "Effective"],
              ["Fixed deposit", 0.0275, "5 years", "2024-03-01"],
              ["Savings", 0.005, "none", "2024-01-15"]]
BRANCH_ROWS = [["网点", "电话", "营业时间"], ["北京分行", "010-12345678", "周一至周五 9:00-17:00"],
               ["上海分行", "021-87654321", "周一至周六 9:00-16:00"]]
VENDORS_CSV = ("vendor,contact,support hours\n"
               "Acme Storage,ops@acme.example,24x7 with a four-hour response time\n"
               "Globex Network,noc@globex.example,business days 8-18\n")
WARDS_CSV_ZH = "科室,位置,电话\n心内科,门诊楼三层东侧,8801\n儿科,门诊楼二层西侧,8802\n"
FAQ_JSONL = [
    {"question": "How do I reset my VPN token?",
     "answer": "Open the self-service portal and choose Reset token; the new token works after 10 minutes."},
    {"question": "如何申请年假？", "answer": "在人事系统提交年假申请，由部门经理审批后生效。"},
    {"title": "Printer policy", "text": "Colour printing needs a cost centre code.", "id": 7},
    {"system": "HIS", "owner": "信息科", "tier": 1},
]
GUIDE_CHAPTERS = [  # EPUB chapters in reading (spine) order
    ("Chapter 1: Onboarding", ["New staff receive their badge from reception on the first morning."]),
    ("第二章 信息安全", ["离开座位时必须锁定电脑屏幕。", "密码不得告诉任何人。"]),
]
CONTRACT_ODT = [("h", 1, "Service contract"), ("p", "The supplier answers tickets within two working days."),
                ("li", "Renewal: every twelve months"), ("h", 2, "违约责任"),
                ("p", "逾期交付的，每日按合同金额的千分之一支付违约金。"),
                ("table", [["Level", "Response"], ["P1", "1 hour"]])]

_OOXML_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_P = "http://schemas.openxmlformats.org/presentationml/2006/main"
_XLSX = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _x(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _rels(targets):
    body = "".join('<Relationship Id="rId%d" Type="%s/%s" Target="%s"/>' % (i, _OOXML_RELS, kind, target)
                   for i, (kind, target) in enumerate(targets, 1))
    return '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="%s">%s</Relationships>' % (_PKG_RELS, body)


def write_zip(path, members, mimetype=None):
    """A zip container; ``mimetype`` first and stored, as ODF and EPUB require."""
    import zipfile

    with zipfile.ZipFile(str(path), "w", zipfile.ZIP_DEFLATED) as archive:
        if mimetype:
            archive.writestr(zipfile.ZipInfo("mimetype"), mimetype, compress_type=zipfile.ZIP_STORED)
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def _shape(text_xml, placeholder=None):
    ph = '<p:nvPr><p:ph type="%s"/></p:nvPr>' % placeholder if placeholder else "<p:nvPr/>"
    return ('<p:sp><p:nvSpPr><p:cNvPr id="2" name="s"/><p:cNvSpPr/>%s</p:nvSpPr><p:spPr/>'
            '<p:txBody><a:bodyPr/>%s</p:txBody></p:sp>' % (ph, text_xml))


def _paras(lines):
    return "".join('<a:p><a:r><a:rPr lang="en-US"/><a:t>%s</a:t></a:r></a:p>' % _x(line) for line in lines)


def make_pptx(path, slides, table=None, slide_xml=None):
    """A PPTX: ``slides`` [(title, [paragraphs], notes or None)]; ``table`` rows go on slide 2;
    ``slide_xml`` replaces slide 1's XML. Slide parts are named in reverse so order comes from
    presentation.xml, as in a reordered deck."""
    members = {"[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                                      'package/2006/content-types"/>',
               "_rels/.rels": _rels([("officeDocument", "ppt/presentation.xml")])}
    ids, targets = [], []
    for number, (title, body, notes) in enumerate(slides, 1):
        part = "slide%d.xml" % (len(slides) + 1 - number)
        targets.append(("slide", "slides/" + part))
        ids.append('<p:sldId id="%d" r:id="rId%d"/>' % (255 + number, number))
        shapes = (_shape(_paras([title]), "title") if title else "") + _shape(_paras(body))
        shapes += _shape(_paras(["3"]), "sldNum")
        if table and number == 2:
            cell = "<a:tc><a:txBody>%s</a:txBody></a:tc>"
            rows = "".join("<a:tr>%s</a:tr>" % "".join(cell % _paras([c]) for c in row) for row in table)
            shapes += ('<p:graphicFrame><a:graphic><a:graphicData><a:tbl>%s</a:tbl></a:graphicData>'
                       '</a:graphic></p:graphicFrame>' % rows)
        xml = ('<?xml version="1.0" encoding="UTF-8"?><p:sld xmlns:a="%s" xmlns:p="%s" xmlns:r="%s"><p:cSld>'
               '<p:spTree><p:grpSp>%s</p:grpSp></p:spTree></p:cSld></p:sld>' % (_A, _P, _OOXML_RELS, shapes))
        members["ppt/slides/" + part] = slide_xml if slide_xml and number == 1 else xml
        if notes:
            members["ppt/slides/_rels/%s.rels" % part] = _rels([("notesSlide", "../notesSlides/n%s" % part)])
            members["ppt/notesSlides/n" + part] = (
                '<p:notes xmlns:a="%s" xmlns:p="%s"><p:cSld><p:spTree>%s%s</p:spTree></p:cSld></p:notes>'
                % (_A, _P, _shape(_paras(["slide image"]), "sldImg"), _shape(_paras([notes]), "body")))
    members["ppt/_rels/presentation.xml.rels"] = _rels(targets)
    members["ppt/presentation.xml"] = ('<p:presentation xmlns:p="%s" xmlns:r="%s"><p:sldIdLst>%s</p:sldIdLst>'
                                       '</p:presentation>' % (_P, _OOXML_RELS, "".join(ids)))
    return write_zip(path, members)


def _xlsx_cell(ref, value, strings):
    if isinstance(value, float):
        return '<c r="%s" s="2"><v>%r</v></c>' % (ref, value)  # style 2: 0.00%
    if len(value) == 10 and value[4] == "-" and value[:4].isdigit():  # a date: serial number, style 1
        import datetime
        serial = (datetime.date.fromisoformat(value) - datetime.date(1899, 12, 30)).days
        return '<c r="%s" s="1"><v>%d</v></c>' % (ref, serial)
    strings.append(value)
    return '<c r="%s" t="s"><v>%d</v></c>' % (ref, len(strings) - 1)


def make_xlsx(path, sheets, sheet_xml=None):
    """An XLSX as Excel writes it: shared strings, dates as styled serial numbers, percentages;
    ``sheets`` [(name, rows)]; ``sheet_xml`` replaces the first sheet's XML."""
    strings, names, targets, members = [], [], [], {}
    for number, (name, rows) in enumerate(sheets, 1):
        cells = "".join('<row r="%d">%s</row>' % (r, "".join(_xlsx_cell("%s%d" % ("ABCDEFGH"[c], r), v, strings)
                                                             for c, v in enumerate(row)))
                        for r, row in enumerate(rows, 1))
        members["xl/worksheets/sheet%d.xml" % number] = sheet_xml if sheet_xml and number == 1 else (
            '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="%s"><dimension ref="A1"/>'
            '<sheetData>%s</sheetData></worksheet>' % (_XLSX, cells))
        names.append('<sheet name="%s" sheetId="%d" r:id="rId%d"/>' % (_x(name), number, number))
        targets.append(("worksheet", "worksheets/sheet%d.xml" % number))
    targets += [("sharedStrings", "sharedStrings.xml"), ("styles", "styles.xml")]
    members.update({
        "[Content_Types].xml": (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/><Override PartName="/xl/styles.xml"'
            ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>%s</Types>'
            % "".join(
                '<Override PartName="/xl/worksheets/sheet%d.xml" ContentType="application/vnd.openxmlformats-'
                'officedocument.spreadsheetml.worksheet+xml"/>' % n for n in range(1, len(sheets) + 1))),
        "_rels/.rels": _rels([("officeDocument", "xl/workbook.xml")]),
        "xl/workbook.xml": '<workbook xmlns="%s" xmlns:r="%s"><sheets>%s</sheets></workbook>'
                           % (_XLSX, _OOXML_RELS, "".join(names)),
        "xl/_rels/workbook.xml.rels": _rels(targets),
        "xl/sharedStrings.xml": '<sst xmlns="%s">%s</sst>' % (_XLSX, "".join(
            "<si><t>%s</t></si>" % _x(s) for s in strings)),
        "xl/styles.xml": ('<styleSheet xmlns="%s"><fonts count="1"><font/></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
                          '<borders count="1"><border/></borders><cellXfs count="3"><xf numFmtId="0"/>'
                          '<xf numFmtId="14" applyNumberFormat="1"/><xf numFmtId="10" applyNumberFormat="1"/>'
                          '</cellXfs></styleSheet>' % _XLSX),
    })
    return write_zip(path, members)


def make_epub(path, chapters, title="Staff guide"):
    """An EPUB 3: chapters [(heading, [paragraphs])]; the manifest lists them in reverse, the spine
    in reading order after the table of contents (nav), which is no chapter."""
    manifest = ['<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>']
    spine = ['<itemref idref="nav"/>']
    members = {"OEBPS/nav.xhtml": '<html xmlns="http://www.w3.org/1999/xhtml"><body><nav><ol><li>Contents</li>'
                                  '</ol></nav></body></html>'}
    for number, (heading, paragraphs) in enumerate(chapters, 1):
        href = "text/chapter %d.xhtml" % number  # a space: hrefs are URL-encoded
        manifest.insert(0, '<item id="c%d" href="%s" media-type="application/xhtml+xml"/>'
                        % (number, href.replace(" ", "%20")))
        spine.append('<itemref idref="c%d"/>' % number)
        members["OEBPS/" + href] = (
            '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml">'
            '<head><title>%s</title></head><body><h1>%s</h1>%s</body></html>'
            % (_x(title), _x(heading), "".join("<p>%s</p>" % _x(p) for p in paragraphs)))
    members["META-INF/container.xml"] = (
        '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        '</rootfiles></container>')
    members["OEBPS/content.opf"] = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">x</dc:identifier>'
        '<dc:title>%s</dc:title><dc:language>en</dc:language></metadata><manifest>%s'
        '<item id="cover" href="cover.jpg" media-type="image/jpeg"/></manifest><spine>%s</spine></package>'
        % (_x(title), "".join(manifest), "".join(spine)))
    return write_zip(path, members, mimetype="application/epub+zip")


def make_odt(path, blocks, content_xml=None):
    """An ODT: blocks ("h", level, text), ("p", text), ("li", text), ("table", [[cells]])."""
    body = []
    for block in blocks:
        if block[0] == "h":
            body.append('<text:h text:outline-level="%d">%s</text:h>' % (block[1], _x(block[2])))
        elif block[0] == "p":
            body.append("<text:p>%s</text:p>" % _x(block[1]).replace("  ", '<text:s text:c="2"/>'))
        elif block[0] == "li":
            body.append("<text:list><text:list-item><text:p>%s</text:p></text:list-item></text:list>" % _x(block[1]))
        else:
            body.append("<table:table>%s</table:table>" % "".join(
                "<table:table-row>%s</table:table-row>" % "".join(
                    "<table:table-cell><text:p>%s</text:p></table:table-cell>" % _x(c) for c in row)
                for row in block[1]))
    content = content_xml or (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.3">'
        '<office:body><office:text>%s</office:text></office:body></office:document-content>' % "".join(body))
    return write_zip(path, {"content.xml": content, "META-INF/manifest.xml": "<manifest/>"},
                     mimetype="application/vnd.oasis.opendocument.text")


def billion_laughs(root_xml):
    """``root_xml`` (a root element) behind a DTD whose entity expands to 10**9 "lol"s."""
    entities = ['<!ENTITY lol0 "lol">'] + ['<!ENTITY lol%d "%s">' % (n, ("&lol%d;" % (n - 1)) * 10)
                                           for n in range(1, 10)]
    return '<?xml version="1.0"?><!DOCTYPE r [%s]>%s' % ("".join(entities), root_xml.replace("BOMB", "&lol9;"))


def write_new_types(root):
    """One document of each table, record and zip + XML type, facts in English and Chinese."""
    os.makedirs(os.path.join(root, "ops"), exist_ok=True)
    make_pptx(os.path.join(root, "ops", "runbook.pptx"), RUNBOOK_SLIDES)
    make_xlsx(os.path.join(root, "rates.xlsx"), [("Rates", RATES_ROWS), ("网点", BRANCH_ROWS)])
    with open(os.path.join(root, "vendors.csv"), "w", encoding="utf-8-sig") as f:
        f.write(VENDORS_CSV)
    with open(os.path.join(root, "wards.csv"), "wb") as f:
        f.write(WARDS_CSV_ZH.encode("gb18030"))
    import json
    with open(os.path.join(root, "faq.jsonl"), "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in FAQ_JSONL))
    make_epub(os.path.join(root, "guide.epub"), GUIDE_CHAPTERS)
    make_odt(os.path.join(root, "contract.odt"), CONTRACT_ODT)
    return root
