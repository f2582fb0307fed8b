"""Evaluation runners on small datasets with the scripted fake model; ledger records; compare."""
import json

import pytest

from llmlab.config import load_settings
from llmlab.errors import InputFileError, InvalidParameterError
from llmlab.eval import compare_runs, evaluate
from llmlab.ledger import Ledger
from llmlab.models.model import load_model


def fake(replies, **kw):
    return load_model("fake", backend="fake", ledger=False, replies=replies, **kw)


def jsonl(tmp_path, name, rows):
    p = tmp_path / name
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return p


@pytest.fixture
def ledger():
    return Ledger(load_settings().ledger_path)


MT = [{"id": "1", "ko": "고양이가 앉았다.", "en": "The cat sat."}, {"id": "2", "ko": "안녕하세요.", "en": "Hello there."}]


def test_translation_perfect_and_recorded(tmp_path, ledger):
    data = jsonl(tmp_path, "mt.jsonl", MT)
    r = evaluate("translate", fake(["The cat sat.", "Hello there."]), data, ledger=ledger)
    d = r.to_dict()
    assert (d["task"], d["model"], d["n"]) == ("translate", "fake", 2)
    assert d["metrics"]["chrf"] == 100.0 and d["metrics"]["bleu"] == 100.0
    rec = ledger.get(r.run_id)
    assert rec.kind == "eval" and rec.meta["metrics"]["chrf"] == 100.0 and len(rec.meta["items"]) == 2
    assert rec.experiment == r.experiment


def test_translation_en_ko_uses_morpheme_bleu(tmp_path):
    data = jsonl(tmp_path, "mt.jsonl", MT)
    r = evaluate("translate", fake(["고양이가 앉았다.", "안녕"]), data, direction="en-ko")
    assert r.metrics["bleu_tokenize"] == "kiwi" and 0 < r.metrics["chrf"] < 100


def test_summarization_rouge(tmp_path):
    data = jsonl(tmp_path, "s.jsonl", [{"id": "a", "document": "고양이가 매트 위에 앉았다. 날씨가 좋았다.",
                                        "summary": "고양이가 매트 위에 앉았다."}])
    r = evaluate("summarize", fake(["고양이가 매트에 앉았다."]), data)
    assert r.metrics["rouge1"] == pytest.approx(100 * 14 / 15, abs=1e-3)
    assert r.metrics["tokenizer"] == "kiwi-morphemes"


def test_qa_with_contexts_and_not_found(tmp_path):
    ctx = jsonl(tmp_path, "c.jsonl", [{"id": "c1", "title": "t", "text": "세종대왕은 1446년에 훈민정음을 반포하였다."}])
    qs = jsonl(tmp_path, "q.jsonl", [
        {"id": "q1", "question": "훈민정음 반포 연도는?", "answers": ["1446년"], "context_id": "c1"},
        {"id": "q2", "question": "누가 반포했나?", "answers": ["세종대왕"], "context_id": "c1"}])
    r = evaluate("qa", fake(["1446년.", "not in the context"]), qs, contexts=ctx)
    assert r.metrics == {"exact_match": 50.0, "f1": 50.0, "not_found_rate": 50.0}


def test_qa_unknown_context_id_is_named_before_running(tmp_path):
    ctx = jsonl(tmp_path, "c.jsonl", [{"id": "c1", "text": "x"}])
    qs = jsonl(tmp_path, "q.jsonl", [{"question": "?", "answers": ["a"], "context_id": "c1"},
                                     {"question": "?", "answers": ["a"], "context_id": "zzz"}])
    m = fake(["a"])
    with pytest.raises(InputFileError) as e:
        evaluate("qa", m, qs, contexts=ctx)
    assert e.value.line == 2 and e.value.field == "context_id" and m.backend.calls == 0
    with pytest.raises(InvalidParameterError, match="--contexts"):
        evaluate("qa", m, qs)


def test_classification(tmp_path):
    data = jsonl(tmp_path, "c.jsonl", [{"text": "좋아요", "label": "긍정"}, {"text": "별로", "label": "부정"},
                                       {"text": "최고", "label": "긍정"}])
    r = evaluate("classify", fake(["긍정", "긍정입니다", "모르겠어요"]), data)
    assert r.metrics["accuracy"] == pytest.approx(100 / 3, abs=1e-3)
    assert r.metrics["invalid_rate"] == pytest.approx(100 / 3, abs=1e-3)
    assert r.metrics["labels"] == ["긍정", "부정"]
    bad = jsonl(tmp_path, "b.jsonl", [{"text": "x", "label": "중립"}])
    with pytest.raises(InputFileError, match="중립"):
        evaluate("classify", fake(["x"]), bad, labels="긍정,부정")


def test_compare_two_runs(tmp_path, ledger):
    data = jsonl(tmp_path, "mt.jsonl", MT)
    a = evaluate("translate", fake(["A cat.", "Hi."]), data, ledger=ledger)
    b = evaluate("translate", fake(["The cat sat.", "Hello there."]), data, ledger=ledger)
    cmp = compare_runs(ledger, a.run_id, b.run_id).to_dict()
    assert cmp["deltas"]["chrf"] == pytest.approx(100 - a.metrics["chrf"], abs=1e-3)
    assert "direction" not in cmp["deltas"]
    assert [(i["id"], i["a"], i["b"]) for i in cmp["items"]] == [("1", "A cat.", "The cat sat."),
                                                                 ("2", "Hi.", "Hello there.")]


def test_compare_refuses_non_eval_runs(ledger):
    from llmlab.ledger import RunRecord

    rid = ledger.record(RunRecord(kind="chat", model="m"))
    with pytest.raises(InvalidParameterError, match="not an evaluation"):
        compare_runs(ledger, rid, rid)


@pytest.mark.slow
def test_translate_two_items_on_the_bundled_model(course_mt):
    m = load_model("smollm2-135m", threads=1, ledger=False)
    try:
        r = evaluate("translate", m, course_mt / "dev.jsonl", limit=2, max_new_tokens=24)
    finally:
        m.close()
    assert r.n == 2 and 0 <= r.metrics["chrf"] <= 100 and 0 <= r.metrics["bleu"] <= 100
