"""CSV, XLSX and JSONL: a row or record is a passage that makes sense alone; hostile or broken
input fails naming the file, the line or sheet, and the fix."""

import json

import pytest

from qa_api.kb import tabular
from qa_api.kb.loaders import LoaderError, load_document
from tests.documents import (BRANCH_ROWS, FAQ_JSONL, RATES_ROWS, VENDORS_CSV, WARDS_CSV_ZH, billion_laughs,
                             make_xlsx)


def put(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


def load(tmp_path, name, data):
    return load_document(put(tmp_path, name, data), name)


def refused(path, rel):
    with pytest.raises(LoaderError) as caught:
        load_document(path, rel)
    assert caught.value.file == rel and str(caught.value).startswith(rel + ": ")
    return caught.value.message


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_csv_rows_carry_their_column_names_in_any_encoding(tmp_path, encoding):
    text = load(tmp_path, "wards.csv", WARDS_CSV_ZH.encode(encoding))
    assert text.split("\n") == ["科室: 心内科; 位置: 门诊楼三层东侧; 电话: 8801",
                                "科室: 儿科; 位置: 门诊楼二层西侧; 电话: 8802"]


def test_csv_quoting_delimiters_and_unlabelled_columns(tmp_path):
    assert load(tmp_path, "v.csv", VENDORS_CSV).split("\n")[0] == (
        "vendor: Acme Storage; contact: ops@acme.example; support hours: 24x7 with a four-hour response time")
    # a quoted field keeps its comma; its line break becomes a space (one row, one line)
    text = load(tmp_path, "q.csv", 'term,meaning\nSLA,"service level, agreed\nin writing"\n')
    assert text == "term: SLA; meaning: service level, agreed in writing"
    assert load(tmp_path, "semi.csv", "Name;Floor\nRadiology;B1\n") == "Name: Radiology; Floor: B1"
    assert load(tmp_path, "hint.csv", "sep=|\nName|Floor\nLab|2\n") == "Name: Lab; Floor: 2"
    assert load(tmp_path, "t.csv", "Name\tNote\nLab\tSee: B1, B2\n") == "Name: Lab; Note: See: B1, B2"
    # pandas writes its index under an empty header; short rows and empty cells are fine
    assert load(tmp_path, "pd.csv", ",city,beds\n0,Wuhan,\n1,Xi'an,300\n").split("\n") == [
        "Column 1: 0; city: Wuhan", "Column 1: 1; city: Xi'an; beds: 300"]
    # no header (numbers in the first row): plain rows; a year row is a header
    assert load(tmp_path, "n.csv", "1,2.5,3\n4,5,6\n") == "1 | 2.5 | 3\n4 | 5 | 6"
    assert load(tmp_path, "y.csv", "branch,2023,2024\nHQ,10,12\n") == "branch: HQ; 2023: 10; 2024: 12"


def test_csv_delimiter_detection_is_linear(tmp_path):
    import time

    started = time.monotonic()  # csv.Sniffer takes about a minute on this
    assert load(tmp_path, "odd.csv", 'a,"' * 21000).startswith("a")
    assert time.monotonic() - started < 5


def test_csv_huge_field_or_unclosed_quote_names_the_line(tmp_path):
    data = "a,b\n1,2\n3,\"%s\n" % ("x" * 200000)
    message = refused(put(tmp_path, "big.csv", data), "data/big.csv")
    assert message.startswith("CSV line 3 cannot be read") and "field larger than field limit" in message
    assert "unclosed" in message


@pytest.mark.parametrize("name,data", [("empty.csv", b""), ("blank.csv", b"\n,,\n , \n"),
                                       ("empty.jsonl", b"\n\n"), ("nulls.jsonl", b'{"text": ""}\n{}\n')])
def test_empty_tables_and_records_name_the_fix(tmp_path, name, data):
    message = refused(put(tmp_path, name, data), name)
    assert message == "no text extracted: add its content or remove it from the documents directory"


def test_xlsx_sheets_header_rows_percent_and_dates(tmp_path):
    path = make_xlsx(tmp_path / "rates.xlsx", [("Rates", RATES_ROWS), ("网点", BRANCH_ROWS)])
    text = load_document(path, "rates.xlsx")
    assert text.split("\n\n") == [
        "# Sheet: Rates",
        "Product: Fixed deposit; Rate: 2.75%; Term: 5 years; Effective: 2024-03-01\n"
        "Product: Savings; Rate: 0.5%; Term: none; Effective: 2024-01-15",
        "# Sheet: 网点",
        "网点: 北京分行; 电话: 010-12345678; 营业时间: 周一至周五 9:00-17:00\n"
        "网点: 上海分行; 电话: 021-87654321; 营业时间: 周一至周六 9:00-16:00"]


def test_xlsx_written_by_openpyxl_with_numbers_and_blank_sheet(tmp_path):
    import datetime

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Limits"
    sheet.append(["Role", "Daily limit", "Approved", "Since"])
    sheet.append(["Teller", 50000, True, datetime.datetime(2024, 5, 6, 9, 30)])
    sheet.append(["Manager", 1250000.5, False, None])
    book.create_sheet("Empty")
    book.save(str(tmp_path / "limits.xlsx"))
    assert load_document(str(tmp_path / "limits.xlsx"), "limits.xlsx") == (
        "# Sheet: Limits\n\nRole: Teller; Daily limit: 50000; Approved: TRUE; Since: 2024-05-06 09:30\n"
        "Role: Manager; Daily limit: 1250000.5; Approved: FALSE")


def test_xlsx_without_text_and_too_sparse(tmp_path, monkeypatch):
    path = make_xlsx(tmp_path / "blank.xlsx", [("Sheet1", [])])
    assert "every sheet is empty" in refused(path, "blank.xlsx")
    monkeypatch.setattr(tabular, "MAX_XLSX_CELLS", 5)
    path = make_xlsx(tmp_path / "wide.xlsx", [("Rates", RATES_ROWS)])
    message = refused(path, "wide.xlsx")
    assert message.startswith("more than 5 cells") and "'Rates'" in message and "export" in message


def test_xlsx_entities_are_refused_by_the_scan_and_by_openpyxl_behind_it(tmp_path, monkeypatch):
    import time

    from qa_api.kb import office

    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    sheet = billion_laughs('<worksheet xmlns="%s"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>BOMB'
                           '</t></is></c></row></sheetData></worksheet>' % ns)
    path = make_xlsx(tmp_path / "lol.xlsx", [("S", [])], sheet_xml=sheet)
    started = time.monotonic()
    message = refused(path, "lol.xlsx")
    assert time.monotonic() - started < 5
    assert message == ("refused: the part xl/worksheets/sheet1.xml declares XML entities, which office documents "
                       "never do (entity expansion or external file references): open it in Excel or LibreOffice "
                       "Calc and save it again as .xlsx")
    # defence in depth: without the scan, openpyxl (with defusedxml) refuses the sheet itself
    monkeypatch.setattr(office, "refuse_entities", lambda *args: None)
    assert refused(path, "lol.xlsx").startswith("refused: the XLSX declares XML entities")


def test_jsonl_one_passage_per_record(tmp_path):
    data = "\ufeff" + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in FAQ_JSONL)
    data += '\n"A plain string record."\n{"messages": [{"role": "user", "content": "Where is B2?"}, ' \
            '{"role": "assistant", "content": "Below the canteen."}]}\n'
    assert load(tmp_path, "faq.jsonl", data).split("\n\n") == [
        "How do I reset my VPN token?\nOpen the self-service portal and choose Reset token; "
        "the new token works after 10 minutes.",
        "如何申请年假？\n在人事系统提交年假申请，由部门经理审批后生效。",
        "Printer policy\nColour printing needs a cost centre code.",
        "system: HIS; owner: 信息科; tier: 1",
        "A plain string record.",
        "user: Where is B2?\nassistant: Below the canteen."]
    assert load(tmp_path, "gbk.jsonl", '{"内容": "门诊时间为八点到十七点。"}\n'.encode("gb18030")) == "门诊时间为八点到十七点。"


@pytest.mark.parametrize("line,problem", [
    ('{"text": "cut off', "line 3 is not valid JSON (Unterminated string"),
    ("[1, 2]", "line 3 is a JSON list, not an object"),
    ("[" * 100000 + "]" * 100000, "line 3 is nested too deeply"),
])
def test_jsonl_bad_line_names_the_line_and_the_fix(tmp_path, line, problem):
    path = put(tmp_path, "kb.jsonl", '{"text": "fine"}\n\n%s\n{"text": "after"}\n' % line)
    message = refused(path, "in/kb.jsonl")
    assert message.startswith(problem)
    assert message.endswith("JSON Lines needs one JSON object per line; fix or remove that line")
