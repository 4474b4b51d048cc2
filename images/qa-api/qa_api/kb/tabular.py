"""Tables and records as passages: CSV, XLSX (openpyxl) and JSON Lines.

A retrieved chunk must make sense on its own, so a table row carries its column names
("Rate: 3.5%; Term: 5 years"), one row a line, and a JSONL record is one paragraph. An
XLSX sheet starts with the heading "# Sheet: <name>", which the builder records as the
heading of the chunks under it.
"""

import csv
import datetime
import io
import itertools
import json
import re
import warnings

from qa_api.kb.loaders import LoaderError, _decode, _read_bytes

_NUMBER = re.compile(r"[-+]?[\d,.\s]*\d[\d,.\s]*%?")
_SEPARATOR_HINT = re.compile(r"sep=(.)\r?\n")  # Excel's first-line hint: sep=;
CSV_DELIMITERS = ",;\t|"
# Fields names tried in order for a JSONL record's text; a record with none of them is
# written as "key: value" pairs.
JSONL_PAIRS = (("question", "answer"), ("问题", "答案"))
JSONL_TEXT = ("text", "content", "body", "page_content", "passage", "正文", "内容")
JSONL_TITLE = ("title", "标题", "heading", "name")
# Cells read from one workbook, the empty ones before a filled cell of a row included: a
# sparse sheet (one cell at column XFD on every row) must not cost hours. The densest sheet
# within the zip caps (256 MiB of XML, ~30 bytes a cell) has under 10 million.
MAX_XLSX_CELLS = 20 * 1000 * 1000


def _cell(value):
    """One cell on one line ("" when empty)."""
    return " ".join(str(value).split()) if value is not None else ""


def _is_label(cell):
    return not _NUMBER.fullmatch(cell) or (cell.isdigit() and 1900 <= int(cell) <= 2100)  # a year column


def _is_header(cells):
    """A first row of labels: text in at least one cell and no number among them (years and
    dates are labels)."""
    filled = [c for c in cells if c != ""]
    return bool(filled) and all(_is_label(c) for c in filled)


def rows_to_text(rows, column_name):
    """Lines of a table: "Header: value; ..." per row when the first row is a header, else
    "value | value". ``rows``: iterable of lists of cells (read once, not kept: a sheet may have
    millions); ``column_name(i)`` names an unlabelled column."""
    rows = (r for r in ([_cell(c) for c in row] for row in rows) if any(r))
    first = next(rows, None)
    second = next(rows, None)
    if first is None:
        return ""
    if second is None or not _is_header(first):
        data = (r for r in (first, second) if r is not None)
        return "\n".join(" | ".join(c for c in row if c) for row in _chain(data, rows))
    names = [name or column_name(i) for i, name in enumerate(first)]
    return "\n".join("; ".join("%s: %s" % (names[i] if i < len(names) else column_name(i), value)
                               for i, value in enumerate(row) if value)
                     for row in _chain([second], rows))


def _chain(*iterables):
    for iterable in iterables:
        yield from iterable


def _delimiter(sample):
    """The candidate that splits the first row into most fields and the next rows alike (",": one
    column). Not csv.Sniffer: its regular expressions take a minute on 64 KiB of 'a,"a,"...'."""
    best, best_score = ",", (0, 0)
    for candidate in CSV_DELIMITERS:
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=candidate)
        try:
            widths = [len(row) for row in itertools.islice(reader, 20) if row]
        except csv.Error:
            continue
        widths = widths[:-1] if len(widths) > 1 else widths  # the sample may end inside a row
        if widths and widths[0] > 1:
            score = (sum(1 for w in widths if w == widths[0]), widths[0])
            if score > best_score:
                best, best_score = candidate, score
    return best


def load_csv(path, rel):
    text = _decode(_read_bytes(path, rel), rel)
    hint = _SEPARATOR_HINT.match(text)
    if hint:
        delimiter, text = hint.group(1), text[hint.end():]
    else:
        delimiter = _delimiter(text[:65536])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    try:
        for row in reader:
            rows.append(row)
    except csv.Error as exc:
        # the usual cause: a quote that is never closed swallows the rest of the file
        raise LoaderError(rel, "CSV line %d cannot be read (%s): check the quoting on or before that line "
                               "(an unclosed \" runs on to the end of the file)" % (reader.line_num, exc)) from None
    return rows_to_text(rows, lambda i: "Column %d" % (i + 1))


def _xlsx_value(cell):
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds" if value.second else "minutes")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, float):
        if "%" in (getattr(cell, "number_format", None) or ""):
            return "%s%%" % _number(value * 100)
        return _number(value)
    return str(value)


def _number(value):
    """12.0 -> "12"; otherwise the shortest repr (no 1.2e+06 for a balance)."""
    value = round(value, 10)
    return str(int(value)) if value.is_integer() else repr(value)


def load_xlsx(path, rel):
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    from qa_api.kb.office import open_zip, refuse_entities

    with open_zip(path, rel, "xlsx") as archive:  # the messages of the other zip types
        refuse_entities(archive, rel, "xlsx")
    if not isinstance(path, str):
        path.seek(0)
    sheets = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no default style", unsupported extensions: noise in the log
            # read_only streams the rows; data_only reads the values saved with formulas
            workbook = load_workbook(path, read_only=True, data_only=True)
            try:
                budget = [MAX_XLSX_CELLS]
                for sheet in workbook.worksheets:
                    # the declared dimension may be wrong: too small cuts cells off, too large
                    # (A1:XFD1048576) pads with millions of empty cells
                    sheet.reset_dimensions()
                    rows = (_xlsx_row(row, sheet.title, budget) for row in sheet.iter_rows())
                    body = rows_to_text(rows, lambda i: "Column " + get_column_letter(i + 1))
                    if body:
                        sheets.append("# Sheet: %s\n\n%s" % (_cell(sheet.title), body))
            finally:
                workbook.close()
    except (MemoryError, LoaderError):
        raise
    except Exception as exc:  # openpyxl raises anything from KeyError to XML errors on a broken file
        raise LoaderError(rel, _xlsx_problem(exc)) from None
    return "\n\n".join(sheets)


class _TooManyCells(Exception):
    pass


def _xlsx_row(row, title, budget):
    budget[0] -= len(row)
    if budget[0] < 0:
        raise _TooManyCells(title)
    return [_xlsx_value(c) for c in row]


def _xlsx_problem(exc):
    from qa_api.kb.office import HOSTILE_XML

    if isinstance(exc, _TooManyCells):
        return ("more than %d cells (counting the empty cells before the last filled one of each row; sheet "
                "%r): remove the empty columns and rows, or export the sheets with text to CSV"
                % (MAX_XLSX_CELLS, str(exc)))
    chain = [exc]  # openpyxl wraps the parser's error in its own ValueError naming the path
    while (chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < 10:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    if any(type(e).__module__.startswith("defusedxml") or "amplification" in str(e) for e in chain):
        return "refused: " + HOSTILE_XML % ("XLSX", "Excel or LibreOffice", "xlsx")
    cause = chain[-1]
    return ("corrupt or unreadable XLSX (%s: %s): open it in Excel or LibreOffice and save it again as .xlsx"
            % (type(cause).__name__, cause))


def _jsonl_scalar(value):
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def record_to_text(record):
    """One JSONL record as a passage."""
    if isinstance(record, str):
        return record.strip()
    for question, answer in JSONL_PAIRS:
        if isinstance(record.get(question), str) and isinstance(record.get(answer), str):
            return "%s\n%s" % (record[question].strip(), record[answer].strip())
    for key in JSONL_TEXT:
        if isinstance(record.get(key), str) and record[key].strip():
            title = next((record[t].strip() for t in JSONL_TITLE
                          if isinstance(record.get(t), str) and record[t].strip()), "")
            return (title + "\n" if title else "") + record[key].strip()
    messages = record.get("messages")
    if isinstance(messages, list) and all(isinstance(m, dict) for m in messages):  # chat transcripts
        return "\n".join("%s: %s" % (m.get("role", "?"), _jsonl_scalar(m.get("content")).strip())
                         for m in messages if m.get("content"))
    return "; ".join("%s: %s" % (key, _cell(_jsonl_scalar(value)))
                     for key, value in record.items() if value not in (None, "", [], {}))


def load_jsonl(path, rel):
    text = _decode(_read_bytes(path, rel), rel)
    passages = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            problem = "nested too deeply" if isinstance(exc, RecursionError) else "not valid JSON (%s)" % exc
            raise LoaderError(rel, "line %d is %s: JSON Lines needs one JSON object per line; fix or remove "
                                   "that line" % (number, problem)) from None
        if not isinstance(record, (dict, str)):
            raise LoaderError(rel, "line %d is a JSON %s, not an object: JSON Lines needs one JSON object "
                                   "per line; fix or remove that line" % (number, type(record).__name__))
        passage = record_to_text(record)
        if passage:
            passages.append(passage)
    return "\n\n".join(passages)
