"""Side-by-side reports: terminal table and self-contained HTML."""
import re

from llmlab.ledger import Ledger
from llmlab.config import load_settings
from llmlab.prompts.grid import grid_from_dict, run_grid
from llmlab.prompts.report import column_means, display_width, html_report, text_table, wrap


def result():
    g = grid_from_dict({
        "name": "r", "templates": [{"name": "a", "prompt": "{{ text }}"}],
        "models": [{"name": "fake", "backend": "fake", "options": {"replies": ["<b>안녕</b> & bye"]}}],
        "params": {"temperature": [0, 0.5], "max_new_tokens": 20},
        "inputs": [{"text": "하나"}, {"text": "two"}], "scorers": ["chars"]})
    return run_grid(g, ledger=Ledger(load_settings().ledger_path))


def test_display_width_and_wrap_handle_korean():
    assert display_width("한국어") == 6 and display_width("abc") == 3
    assert wrap("한국어 문장입니다", 8) == ["한국어", "문장입니", "다"]
    assert all(display_width(line) <= 10 for line in wrap("서울시는 내년부터 모든 시내버스에", 10))


def test_text_table_has_a_row_per_input_and_a_column_per_variant():
    r = result()
    table = text_table(r, width=100)
    assert r.experiment in table
    lines = table.splitlines()
    header = lines[2]
    assert "temperature=0" in header and "temperature=0.5" in header
    assert table.count("<b>안녕</b> & bye") == 4
    assert "mean" in table and all(display_width(line) == display_width(lines[1]) for line in lines[1:])
    assert column_means(r)[0]["chars"] == len("<b>안녕</b> & bye")


def test_html_is_self_contained_and_escaped():
    page = html_report(result())
    assert page.startswith("<!doctype html>") and "<style>" in page
    assert "&lt;b&gt;안녕&lt;/b&gt; &amp; bye" in page and "<b>안녕</b>" not in page
    assert not re.search(r"(src|href)=|<script|@import|url\(", page)
    assert page.count("<tr>") == 1 + 2  # header + one row per input (+ the mean row)
