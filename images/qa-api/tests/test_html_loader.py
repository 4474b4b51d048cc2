"""HTML through lxml: tables, definition lists, lists, headings and pre keep their structure."""

from qa_api.kb.html_text import html_to_text
from qa_api.kb.loaders import LoaderError, load_document

import pytest

MANUAL = """<?xml version="1.0" encoding="utf-8"?>
<html><head><title>网关手册</title><script>var x = "do not index";</script></head><body>
<h1>端口 <small>Ports</small></h1>
<table><caption>开放端口</caption>
<thead><tr><th>服务</th><th>端口</th><th>协议</th></tr></thead>
<tbody><tr><td>VPN</td><td>1194</td><td>udp</td></tr>
<tr><td><b>SSH</b> (bastion)</td><td>22</td><td>tcp</td></tr></tbody></table>
<h2>Settings</h2>
<dl><dt>QA_TOP_K</dt><dd>passages per question</dd><dt>QA_CACHE_TTL</dt><dd>seconds</dd></dl>
<p>Reload with<br>nginx -s reload</p>
<pre>server {
    listen 443 ssl;
    server_name qa.example.cn;
}</pre>
<ul><li>first<ul><li>nested</li></ul></li><li>second</li></ul>
<!-- a comment --><p>最后一段。</p></body></html>"""


def test_table_cells_are_separated_and_each_row_is_a_line():
    text = html_to_text(MANUAL)
    assert "开放端口\n服务 | 端口 | 协议\nVPN | 1194 | udp\nSSH (bastion) | 22 | tcp" in text


def test_definition_lists_lists_and_breaks_end_lines():
    text = html_to_text(MANUAL)
    assert "QA_TOP_K\npasses" not in text  # not glued, not mangled
    assert "QA_TOP_K\npassages per question\nQA_CACHE_TTL\nseconds" in text
    assert "- first\n- nested\n- second" in text
    assert "Reload with\nnginx -s reload" in text


def test_pre_is_kept_verbatim_and_headings_become_markdown():
    text = html_to_text(MANUAL)
    assert "server {\n    listen 443 ssl;\n    server_name qa.example.cn;\n}" in text
    assert "# 端口 Ports" in text.splitlines() and "## Settings" in text.splitlines()
    assert text.startswith("网关手册\n\n")
    assert "do not index" not in text and "comment" not in text
    assert text.endswith("最后一段。")


def test_loader_keeps_pre_indentation_and_reports_empty_pages(tmp_path):
    page = tmp_path / "manual.html"
    page.write_text(MANUAL, encoding="utf-8")
    text = load_document(str(page), "manual.html")
    assert "\n    listen 443 ssl;" in text and "VPN | 1194 | udp" in text
    empty = tmp_path / "empty.html"
    empty.write_text("<html><head><script>x()</script></head><body> </body></html>")
    with pytest.raises(LoaderError, match="empty.html: no text extracted"):
        load_document(str(empty), "empty.html")


def test_gbk_html_is_decoded(tmp_path):
    page = tmp_path / "legacy.htm"
    page.write_bytes("<html><body><table><tr><td>端口</td><td>22</td></tr></table></body></html>"
                     .encode("gb18030"))
    assert load_document(str(page), "legacy.htm") == "端口 | 22"
