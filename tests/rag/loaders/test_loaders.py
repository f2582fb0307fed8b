"""Loaders: every format, encodings, and bad files reported by name."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.rag.loaders import LOADERS, load_file, load_paths
from llmlab.rag.loaders.encoding import UndecodableError, decode_text
from llmlab.rag.types import Document, Skipped


def docs_of(path) -> list[Document]:
    out = list(load_file(Path(path)))
    assert all(isinstance(d, Document) for d in out), out
    return out


def test_cp949_korean_text_is_decoded(tmp_path):
    p = tmp_path / "ko.txt"
    p.write_bytes("근로기준법 제60조는 연차 유급휴가를 정한다.".encode("cp949"))
    [doc] = docs_of(p)
    assert doc.text == "근로기준법 제60조는 연차 유급휴가를 정한다."
    assert doc.meta["encoding"] == "cp949"
    assert doc.id == str(p.resolve())


@pytest.mark.parametrize("data,encoding", [
    ("한국어".encode("utf-8"), "utf-8"),
    ("한국어".encode("utf-8-sig"), "utf-8-sig"),
    ("한국어".encode("utf-16"), "utf-16"),
    ("한국어".encode("euc-kr"), "cp949"),
])
def test_decode_text(data, encoding):
    assert decode_text(data) == ("한국어", encoding)


def test_binary_is_not_text():
    with pytest.raises(UndecodableError):
        decode_text(b"\x00\x01\x02binary")


def test_text_pages_split_on_form_feeds(tmp_path):
    p = tmp_path / "paged.txt"
    p.write_text("첫 쪽 내용이다.\f둘째 쪽 내용이다.", encoding="utf-8")
    [doc] = docs_of(p)
    assert doc.page_at(doc.text.index("둘째")) == 2 and doc.page_at(0) == 1
    assert "\f" not in doc.text


def test_markdown_front_matter_title_and_sections(tmp_path):
    p = tmp_path / "law.md"
    p.write_text("---\n제목: 최저임금법\n공포일자: 2020-05-26\n---\n\n# 최저임금법\n\n## 제1장 총칙\n\n"
                 "##### 제1조 (목적)\n\n이 법은 목적을 정한다.\n", encoding="utf-8")
    [doc] = docs_of(p)
    assert doc.title == "최저임금법"
    assert "제목:" not in doc.text
    assert doc.section_at(doc.text.index("이 법은")) == "제1장 총칙 > 제1조 (목적)"


def test_statute_articles_become_sections_in_plain_text(tmp_path):
    p = tmp_path / "law.txt"
    p.write_text("근로기준법\n제1장 총칙\n제1조(목적) 이 법은 목적을 정한다.\n제60조(연차 유급휴가) ① 15일을 준다.\n",
                 encoding="utf-8")
    [doc] = docs_of(p)
    assert doc.section_at(doc.text.index("15일")) == "제1장 총칙 > 제60조(연차 유급휴가)"


def test_html_visible_text_title_and_headings(tmp_path):
    p = tmp_path / "page.html"
    p.write_text("<html><head><title>안내</title><style>p{color:red}</style></head><body>"
                 "<nav>메뉴</nav><h1>소개</h1><p>첫 문단입니다.</p><script>var x=1;</script>"
                 "<h2>자세히</h2><p>둘째 &amp; 문단입니다.</p></body></html>", encoding="utf-8")
    [doc] = docs_of(p)
    assert doc.title == "안내"
    assert "color" not in doc.text and "var x" not in doc.text and "메뉴" not in doc.text
    assert "둘째 & 문단입니다." in doc.text
    assert doc.section_at(doc.text.index("둘째")) == "소개 > 자세히"


def test_docx_paragraphs_headings_and_tables(tmp_path):
    docx = pytest.importorskip("docx")
    d = docx.Document()
    d.add_heading("사용 설명서", level=1)
    d.add_paragraph("첫 번째 문단입니다.")
    d.add_heading("설치", level=2)
    d.add_paragraph("설치 방법을 설명합니다.")
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "항목", "값"
    p = tmp_path / "manual.docx"
    d.save(p)
    [doc] = docs_of(p)
    assert "설치 방법을 설명합니다." in doc.text and "항목 | 값" in doc.text
    assert doc.section_at(doc.text.index("설치 방법")) == "사용 설명서 > 설치"


def test_pdf_pages_are_kept(course_rag):
    """Every bundled PDF: page count, title, and each page's text mapped back to its page and article."""
    import re

    import pypdf

    pdfs = sorted((course_rag / "docs").glob("*.pdf"))
    assert pdfs
    for pdf in pdfs:
        [doc] = docs_of(pdf)
        pages = [pg.extract_text() or "" for pg in pypdf.PdfReader(pdf).pages]
        assert doc.meta["pages"] == len(pages)
        assert doc.title == next(line.strip() for line in pages[0].splitlines() if line.strip())
        for number, text in enumerate(pages, 1):
            lines = [line.strip() for line in text.splitlines() if len(line.strip()) > 20]
            if not lines:
                continue
            line = max(lines, key=len)
            assert doc.page_at(doc.text.index(line)) == number, (pdf.name, number)
        articles = list(re.finditer(r"^(제\d+조\([^)]+\))\s*$", doc.text, re.M))
        assert articles, pdf.name
        last = articles[-1]
        assert last.group(1) in doc.section_at(last.end() + 1), (pdf.name, last.group(1))


def test_jsonl_records_are_documents_and_bad_lines_are_named(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join([
        json.dumps({"id": "a", "title": "A", "text": "가나다", "lang": "ko"}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": "b", "title": "B"}),
        json.dumps({"id": "a", "title": "A2", "text": "중복"}, ensure_ascii=False),
        json.dumps({"id": "c", "text": "라마바"}, ensure_ascii=False),
    ]), encoding="utf-8")
    items = list(load_file(p))
    docs = [i for i in items if isinstance(i, Document)]
    bad = [i for i in items if isinstance(i, Skipped)]
    assert [d.id for d in docs] == ["a", "c"]
    assert docs[0].title == "A" and docs[0].meta["lang"] == "ko"
    assert [b.path for b in bad] == [f"{p}:2", f"{p}:3", f"{p}:4"]


def test_folder_with_bad_files_loads_the_good_ones(docs_dir):
    items = list(load_paths([docs_dir]))
    docs = [i for i in items if isinstance(i, Document)]
    skipped = {Path(s.path).name: s.reason for s in items if isinstance(s, Skipped)}
    assert sorted(Path(d.source).name for d in docs) == ["guide.md", "korea.txt", "records.jsonl", "records.jsonl",
                                                          "records.jsonl"]
    assert skipped.keys() == {"empty.txt", "broken.pdf"}
    assert "empty" in skipped["empty.txt"]
    assert "PDF" in skipped["broken.pdf"]
    ko = next(d for d in docs if d.source.endswith("korea.txt"))
    assert "세종대왕" in ko.text


def test_unknown_types_and_missing_paths_are_reported(tmp_path):
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden.txt").write_text("secret", encoding="utf-8")
    items = list(load_paths([tmp_path, tmp_path / "nope"]))
    assert [(Path(s.path).name, s.reason.split(";")[0]) for s in items] == [
        ("image.png", "unsupported file type '.png'"), ("nope", "no such file or folder")]


def test_registry_lists_formats():
    assert {".txt", ".md", ".pdf", ".docx", ".html", ".jsonl"} <= set(LOADERS.names())
