"""What kind of expression a Korean question asks for, and whether a sentence holds one.

A near miss — the documents talk about the question's topic but do not say what it asks
("사내 카페의 아메리카노는 얼마인가요?" over a chunk about the café's opening hours) — usually
has the topic sentence but no expression of the asked type next to it. The question's
wh-word or counter gives the type: 몇 + counter (몇 분, 몇 권, 몇 퍼센트) and 며칠 ask for a
number with that counter, 얼마 for an amount, 언제 for a time expression, 누구/누가 for a
person or team, 어디 for a place or where to find something. Other questions (무엇, 어떻게,
yes/no) get no type: the signal says nothing about them. Plain regular expressions, so it
works with any lexical tokenizer and costs microseconds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

_NATIVE = r"(?:한|두|세|네|다섯|여섯|일곱|여덟|아홉|열)"
#: a number: digits, or a native Korean numeral before a counter (한 번, 두 권, 세 명)
NUMBER = re.compile(r"\d|" + _NATIVE + r"\s?(?:번|명|권|개|시간|달|주|대|부|가지|차례|곳|사람|살|해)")
#: the counter after 몇 → the ways a document writes it (몇 살 → 만 60세, 몇 달 → 3개월)
COUNTERS: dict[str, str] = {
    "퍼센트": "퍼센트|%", "시간": "시간", "개월": "개월", "살": "세|살", "달": "개월|달", "번": "번|회", "회": "회|번",
    "명": "명|인", "시": "시", "분": "분", "권": "권", "층": "층", "년": "년", "일": "일", "주": "주", "개": "개",
    "자": "자", "부": "부", "대": "대",
}
_WHEN = re.compile(r"\d|요일|매주|매월|매년|매일|상반기|하반기|분기|오전|오후|당일|전날|다음 날|즉시|지체 없이|직후|이전|이후"
                   r"|까지|부터|주말|평일|월말|연말")
_WHO = re.compile(r"팀장|팀|장(?!\w)|책임자|대표|이사|담당자|위원|본부장|CTO|CEO|직원|부서|실장|관리자|임원|센터")
_WHERE = re.compile(r"층|실|룸|역|데스크|센터|시스템|메뉴|사이트|주소|앱|@|http|홈페이지|포털|게시판|건물|로비|관|구역|라운지|팀")
_ASKS = re.compile(r"몇\s*([가-힣A-Za-z%]*)|며칠|얼마|언제|누구|누가|어디")
#: the question words themselves: not a topic noun a sentence should hold
WH_NOUNS = frozenset({"얼마", "며칠", "무엇", "언제", "어디", "누구"})
_SENTENCE_END = re.compile(r"(?<=[.?!。])\s+|\n+")


@dataclass(frozen=True)
class AnswerType:
    """``kind``: count, amount, when, who or where; ``counter``: the counter after 몇 (if known)."""

    kind: str
    counter: str = ""

    def found_in(self, text: str) -> bool:
        """Whether ``text`` holds an expression of this type."""
        if self.kind == "count" and self.counter in COUNTERS:
            return re.search(r"(?:\d[\d,.]*|" + _NATIVE + r")\s?(?:" + COUNTERS[self.counter] + ")", text) is not None
        if self.kind in ("count", "amount"):
            return NUMBER.search(text) is not None
        pattern = {"when": _WHEN, "who": _WHO, "where": _WHERE}[self.kind]
        return pattern.search(text) is not None


def answer_type(question: str) -> AnswerType | None:
    """The type of expression ``question`` asks for (its first wh-word), or None when it names none."""
    m = _ASKS.search(question)
    if m is None:
        return None
    word = m.group(0)
    if word.startswith("몇"):
        after = m.group(1)
        counter = next((c for c in sorted(COUNTERS, key=len, reverse=True) if after.startswith(c)), "")
        return AnswerType("count", counter)
    if word == "며칠":
        return AnswerType("count", "일")
    return AnswerType({"얼마": "amount", "언제": "when", "누구": "who", "누가": "who", "어디": "where"}[word])


def rarity_weights(key_weights: Mapping[str, float]) -> dict[str, float]:
    """Each key term's weight: its best single-term BM25 score in the collection (an IDF-like
    rarity), and for a term the collection never holds 1.5 times the rarest known one — a
    missing specific term is the surest sign of a near miss."""
    if not key_weights:
        return {}
    top = max(key_weights.values())
    return {t: (w if w > 0 else 1.5 * max(top, 1.0)) for t, w in key_weights.items()}


def sentences(text: str) -> list[str]:
    """``text`` split into sentences and lines (a heading or list item is one)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.strip()) > 1]


def type_gap(question: str, texts: Sequence[str], key_weights: Mapping[str, float], window: int = 2) -> float:
    """How much of the question's topic the best sentence holds beyond the best sentence with the asked type.

    Each sentence of ``texts`` scores the rarity-weighted share of the question's key nouns
    it holds (``key_weights`` as in :func:`llmlab.rag.abstain.missing_share`); a sentence
    counts as typed when it or the next ``window - 1`` sentences hold an expression of the
    question's :func:`answer_type`. The gap is the best score minus the best typed score:
    0 when the topic sentence has the asked expression beside it (or the question has no
    type), up to 1 when the topic is there but no number, time, person or place near it.
    """
    kind = answer_type(question)
    weights = {t: w for t, w in key_weights.items() if t not in WH_NOUNS}
    if kind is None or not weights:
        return 0.0
    weights = rarity_weights(weights)
    total = sum(weights.values())
    best = best_typed = 0.0
    for text in texts:
        sents = sentences(text)
        for i, s in enumerate(sents):
            low = s.lower()
            share = sum(w for t, w in weights.items() if t.lower() in low) / total
            best = max(best, share)
            if kind.found_in(" ".join(sents[i:i + window])):
                best_typed = max(best_typed, share)
    return best - best_typed
