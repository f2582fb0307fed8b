"""Evaluation: distinct-document recall, MRR, answer-in-context, EM/F1."""
from __future__ import annotations


import pytest

import llmlab
from llmlab.errors import InputFileError
from llmlab.rag.evaluate import Question, char_f1, evaluate, exact_match, load_questions
from llmlab.rag.ingest import ingest


def test_exact_match_and_korquad_f1():
    assert exact_match(" 목성 ", ["목성"]) == 1.0
    assert exact_match("목성입니다", ["목성"]) == 0.0
    assert char_f1("목성입니다", ["목성"]) == pytest.approx(2 * (2 / 5) * 1 / (2 / 5 + 1))
    assert char_f1("화성", ["목성"]) == pytest.approx(0.5)
    assert char_f1("", ["목성"]) == 0.0


def test_load_questions_names_bad_lines(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text('{"question": "a", "context_id": "x"}\n{"question": "b"}\n', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"q.jsonl:2"):
        load_questions(p)


def test_retrieval_metrics(docs_dir, fast_config, tmp_path):
    ingest([docs_dir], "t", **fast_config)
    qs = [Question("1", "목성에는 대적점이 있나", ["대적점"], "rec-2"),
          Question("2", "고양이는 쥐를 잡는", ["쥐"], "rec-0"),
          Question("3", "완전히 무관한 질문", ["없음"], "rec-1")]
    r = evaluate(qs, "t", k=10)
    m = r.metrics
    assert r.n == 3 and set(m) == {"recall@1", "recall@5", "recall@10", "mrr@10", "answer_in_context"}
    assert m["recall@1"] >= 2 / 3 - 1e-9 and m["recall@10"] == 1.0  # only 5 documents: all are in the top 10
    assert 2 / 3 <= m["mrr@10"] <= 1.0
    assert m["answer_in_context"] >= 2 / 3 - 1e-9
    d = r.to_dict()
    assert d["task"] == "rag" and d["n"] == 3 and d["metrics"] == m


def test_recall_cutoffs_follow_k(docs_dir, fast_config):
    ingest([docs_dir], "t", **fast_config)
    r = evaluate([Question("1", "고양이는 쥐를 잡는", ["쥐"], "rec-0")], "t", k=1)
    assert set(r.metrics) == {"recall@1", "mrr@10", "answer_in_context"}


def test_answers_are_scored(docs_dir, fast_config):
    ingest([docs_dir], "t", **fast_config)
    m = llmlab.load_model("x", backend="fake", replies=["목성"], context_length=4096, ledger=False)
    r = evaluate([Question("1", "목성에는 대적점이 있나", ["목성"], "rec-2")], "t", answer_model=m)
    assert r.metrics["exact_match"] == 1.0 and r.metrics["f1"] == 1.0 and r.metrics["citation_accuracy"] == 1.0
