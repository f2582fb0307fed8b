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
    assert r.n == 3 and set(m) == {"recall@1", "recall@5", "recall@10", "mrr@10", "answer_in_context",
                                   "answer_hit@1", "answer_hit@5", "answer_hit@10", "false_refusal"}
    assert m["answer_hit@1"] <= m["answer_hit@5"] <= m["answer_hit@10"] <= 1.0 and m["answer_hit@1"] >= 1 / 3
    assert m["recall@1"] >= 2 / 3 - 1e-9 and m["recall@10"] == 1.0  # only 5 documents: all are in the top 10
    assert 2 / 3 <= m["mrr@10"] <= 1.0
    assert m["answer_in_context"] >= 2 / 3 - 1e-9
    d = r.to_dict()
    assert d["task"] == "rag" and d["n"] == 3 and d["metrics"] == m


def test_recall_cutoffs_follow_k(docs_dir, fast_config):
    ingest([docs_dir], "t", **fast_config)
    r = evaluate([Question("1", "고양이는 쥐를 잡는", ["쥐"], "rec-0")], "t", k=1)
    assert set(r.metrics) == {"recall@1", "mrr@10", "answer_in_context", "answer_hit@1", "answer_hit@5",
                              "answer_hit@10", "false_refusal"}


def test_answers_are_scored(docs_dir, fast_config):
    ingest([docs_dir], "t", **fast_config)
    m = llmlab.load_model("x", backend="fake", replies=["목성"], context_length=4096, ledger=False)
    r = evaluate([Question("1", "목성에는 대적점이 있나", ["목성"], "rec-2")], "t", answer_model=m)
    assert r.metrics["exact_match"] == 1.0 and r.metrics["f1"] == 1.0 and r.metrics["citation_accuracy"] == 1.0


def test_unanswerable_questions_misses_and_calibration(docs_dir, fast_config, tmp_path):
    import json

    ingest([docs_dir], "t", **fast_config)
    rows = [{"id": "a1", "question": "목성에는 대적점이 있나", "answers": ["대적점"], "context_id": "rec-2", "split": "calib"},
            {"id": "a2", "question": "고양이는 쥐를 잡는 동물", "answers": ["쥐"], "context_id": "rec-0", "split": "test"},
            {"id": "a3", "question": "강아지는 산책을 좋아한다", "answers": ["산책"], "context_id": "rec-1", "split": "calib"},
            {"id": "a4", "question": "한글은 세종대왕이 만들었다", "answers": ["세종대왕"], "context_id": "korea.txt",
             "split": "test"},
            {"id": "u1", "question": "화성 탐사선 발사 일정", "answers": [], "answerable": False, "context_id": None,
             "split": "calib"},
            {"id": "u2", "question": "주식 시장 전망 보고서", "answers": [], "answerable": False, "split": "test"}]
    q = tmp_path / "q.jsonl"
    q.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    qs = load_questions(q)
    assert [x.answerable for x in qs] == [True, True, True, True, False, False]
    r = evaluate(qs, "t", k=5)
    m = r.metrics
    assert r.n == 6 and m["recall@1"] == 1.0  # a4's context_id is a file name: it matches the file's document
    assert m["unanswerable_refused"] == 1.0 and m["false_refusal"] == 0.0
    assert {x["id"] for x in r.misses} <= {"a1", "a2", "a3", "a4"}
    c = evaluate(qs, "t", k=5, calibrate=True)
    assert c.n == 3 and c.calibration["n"] == 3  # fitted on the calib split, reported on the test split
    assert set(c.calibration) >= {"coverage", "dense", "bias", "threshold"}
