"""The bundled course_rag data set: documents load, questions are consistent with them.

Offsets are checked against the text llmlab's own loaders extract, so a loader change that
shifts text (e.g. how .docx tables or HTML blocks are joined) shows up here.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import llmlab
from llmlab.rag.loaders import load_file
from llmlab.rag.types import Document

ROOT = Path(llmlab.__file__).parent / "datasets" / "bundled" / "course_rag"
TYPES = {"factoid", "number", "paraphrase", "negation", "multi_sentence", "near_duplicate", "unanswerable"}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def texts() -> dict[str, Document]:
    out = {}
    for f in sorted((ROOT / "docs").iterdir()):
        docs = list(load_file(f))
        assert len(docs) == 1 and isinstance(docs[0], Document), f"{f.name}: {docs}"
        out[f.name] = docs[0]
    return out


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    return _jsonl(ROOT / "questions.jsonl")


def test_documents_formats_and_one_cp949_file(texts):
    assert len(texts) >= 30
    suffixes = Counter(Path(n).suffix for n in texts)
    assert suffixes[".md"] + suffixes[".txt"] > len(texts) / 2
    assert suffixes[".html"] >= 3 and suffixes[".docx"] >= 2 and suffixes[".pdf"] >= 2
    cp949 = [n for n, d in texts.items() if d.meta.get("encoding") == "cp949"]
    assert len(cp949) == 1 and cp949[0].endswith(".txt")
    raw = (ROOT / "docs" / cp949[0]).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "주차" in raw.decode("cp949")
    for name, d in texts.items():  # every document, PDFs included, yields real Korean text
        hangul = sum("가" <= ch <= "힣" for ch in d.text)
        assert hangul > 200, f"{name}: only {hangul} Hangul syllables extracted"


def test_question_fields_ids_and_splits(questions):
    assert len(questions) >= 150
    assert len({q["id"] for q in questions}) == len(questions)
    by_type = Counter(q["type"] for q in questions)
    assert set(by_type) == TYPES
    assert by_type["unanswerable"] >= 30
    for t in TYPES:
        assert {q["split"] for q in questions if q["type"] == t} == {"calib", "test"}, t
    for q in questions:
        assert q["question"].strip() and isinstance(q["answerable"], bool)
        if q["answerable"]:
            assert q["doc"] and q["answers"] and len(q["answers"]) == len(q["answer_starts"]), q["id"]
            assert q["context_id"] == q["doc"]
            assert q["doc"] not in q["also_in"]
        else:
            assert q["type"] == "unanswerable" and q["doc"] is None and q["answers"] == [] == q["answer_starts"]
    assert any(q["question"] == "도서관은 무슨 요일에 쉬나요?" and q["answerable"] for q in questions)


def test_every_answer_sits_at_its_offset_in_the_loaded_text(texts, questions):
    for q in questions:
        for answer, start in zip(q["answers"], q["answer_starts"]):
            text = texts[q["doc"]].text
            assert text[start:start + len(answer)] == answer, f"{q['id']}: {answer!r} not at {start} in {q['doc']}"
        for other in q["also_in"]:  # documents restating the answer exist too
            assert other in texts, f"{q['id']}: no document {other!r}"
    gold_formats = {Path(q["doc"]).suffix for q in questions if q["answerable"]}
    assert gold_formats == {".md", ".txt", ".html", ".docx", ".pdf"}


def test_eval_export_matches_documents_and_questions(texts, questions):
    corpus = {r["id"]: r for r in _jsonl(ROOT / "eval" / "corpus.jsonl")}
    assert set(corpus) == set(texts)
    assert all(corpus[n]["text"] == d.text for n, d in texts.items())
    exported = _jsonl(ROOT / "eval" / "questions.jsonl")
    assert [e["id"] for e in exported] == [q["id"] for q in questions if q["answerable"]]
    assert all(e["context_id"] in corpus for e in exported)
