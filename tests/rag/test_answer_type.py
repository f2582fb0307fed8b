"""The answer type a Korean question asks for, and whether the topic sentence of a chunk holds it."""
from __future__ import annotations

import pytest

from llmlab.rag.answer_type import AnswerType, answer_type, sentences, type_gap


@pytest.mark.parametrize("question, expected", [
    ("사내 도서관에 책은 모두 몇 권이나 있나요?", AnswerType("count", "권")),
    ("3층 휴게실 안마의자는 한 번에 몇 분까지 쓸 수 있나요?", AnswerType("count", "분")),
    ("직원의 정년은 몇 살인가요?", AnswerType("count", "살")),
    ("가람노트 팀 요금제의 저장 공간은 몇 GB인가요?", AnswerType("count", "")),  # no known counter: any number
    ("법인카드를 쓴 뒤 며칠 안에 정산해야 하나요?", AnswerType("count", "일")),
    ("사내 카페의 아메리카노는 얼마인가요?", AnswerType("amount")),
    ("연말 송년회는 보통 언제 열리나요?", AnswerType("when")),
    ("보안사고 비상대응반의 반장은 누가 맡나요?", AnswerType("who")),
    ("흡연 구역은 어디에 있나요?", AnswerType("where")),
    ("대회의실 '큰마루'에는 빔 프로젝터가 있나요?", None),  # yes/no: no type, the signal stays silent
    ("회의실은 어떤 시스템에서 예약하나요?", None),
])
def test_the_wh_word_or_counter_gives_the_type(question, expected):
    assert answer_type(question) == expected


def test_an_expression_of_the_type_is_found_with_the_counters_a_document_uses():
    assert AnswerType("count", "권").found_in("회원은 책 다섯 권을 14일 동안 빌릴 수 있다.")
    assert not AnswerType("count", "권").found_in("도서관은 5층에 있다.")  # a number, but not of books
    assert AnswerType("count", "살").found_in("직원의 정년은 만 60세로 한다.")
    assert AnswerType("count", "퍼센트").found_in("연간 결제는 20% 할인된다.")
    assert AnswerType("amount").found_in("월 8,000원") and not AnswerType("amount").found_in("카페에서 커피를 판다.")
    assert AnswerType("when").found_in("매주 월요일은 휴관한다.") and not AnswerType("when").found_in("송년회를 연다.")
    assert AnswerType("who").found_in("반장은 정보보안팀장이 맡는다.")
    assert AnswerType("where").found_in("1층 안내데스크에서 받는다.")


def test_sentences_split_on_sentence_ends_and_lines():
    assert sentences("제1조(목적) 이 규정은 정한다. 둘째 문장이다.\n## 제2조\n- 항목") == [
        "제1조(목적) 이 규정은 정한다.", "둘째 문장이다.", "## 제2조", "- 항목"]


def test_the_gap_is_the_topic_sentence_without_the_asked_expression():
    weights = {"사내": 2.0, "카페": 4.0, "아메리카노": 6.0, "얼마": 3.0}  # 얼마 is the question word, not topic
    question = "사내 카페의 아메리카노는 얼마인가요?"
    near_miss = "사내 카페에서는 아메리카노와 라떼를 판다. 카페는 누구나 이용할 수 있다."
    answered = "사내 카페에서 아메리카노는 한 잔에 1,500원이다."
    assert type_gap(question, [near_miss], weights) == pytest.approx(1.0)
    assert type_gap(question, [answered], weights) == 0.0
    # the expression may sit in the sentence after the topic one (a FAQ question line, then its answer)
    assert type_gap(question, ["**사내 카페 아메리카노 가격**\n한 잔에 1,500원입니다."], weights) == 0.0
    # a typed sentence holding less of the topic leaves part of the gap: 카페 (4 of 12) has a number,
    # two sentences away from the topic one
    partial = "사내 카페에서는 아메리카노를 판다. 라떼도 판다. 카페는 2층에 있다."
    assert type_gap(question, [partial], weights, window=3) == 0.0
    assert type_gap(question, [partial], weights) == pytest.approx(1.0 - 4.0 / 12.0)
    # no type (a yes/no question) or no key nouns: no gap
    assert type_gap("사내 카페에 아메리카노가 있나요?", [near_miss], weights) == 0.0
    assert type_gap(question, [near_miss], {}) == 0.0
