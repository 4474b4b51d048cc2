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
    """The sample knowledge base: md, html, Chinese txt, pdf, docx and one skipped file."""
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
    with open(os.path.join(root, "notes.csv"), "w", encoding="utf-8") as f:
        f.write("not,a,document\n")
    return root


def make_zip_bomb_docx(path, expanded_bytes=1024 ** 3):
    """A DOCX whose word/document.xml is ``expanded_bytes`` of zeros (1 GiB deflates to about 1 MB)."""
    import zipfile

    block = b"\0" * (4 * 1024 * 1024)
    with zipfile.ZipFile(str(path), "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            left = expanded_bytes
            while left > 0:
                member.write(block[:min(left, len(block))])
                left -= len(block)
    return path
