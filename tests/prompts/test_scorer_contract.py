"""Every registered prompt scorer passes :class:`llmlab.testing.scorer_contract.ScorerContract`."""
from __future__ import annotations

from llmlab.prompts.scorers import SCORERS
from llmlab.testing.scorer_contract import REFERENCE, ScorerContract

EXP = {"expected": REFERENCE}
REF = {"reference": REFERENCE}


class TestChars(ScorerContract):
    spec, hi = "chars", None
    best, worst = ("가나다 abc", {}, 7.0), ("", {}, 0.0)


class TestKoreanRatio(ScorerContract):
    spec, hi = "korean_ratio", 100.0
    best, worst = ("한국어로만 답함", {}, 100.0), ("English only!", {}, 0.0)


class TestJsonValid(ScorerContract):
    spec = "json_valid"
    best, worst = ('{"answer": "서울"}', {}, 1.0), ("서울입니다", {}, 0.0)


class TestContains(ScorerContract):
    spec, reference_field = "contains", "expected"
    best, worst = (f"정답: {REFERENCE} 끝", EXP, 1.0), ("부산", EXP, 0.0)


class TestRegex(ScorerContract):
    spec = {"name": "regex", "pattern": "서울"}
    best, worst = ("수도는 서울", {}, 1.0), ("수도는 부산", {}, 0.0)


class TestExact(ScorerContract):
    spec, hi, reference_field = "exact", 100.0, "expected"
    best, worst = (f"  {REFERENCE}  ", EXP, 100.0), ("부산", EXP, 0.0)


class TestChrf(ScorerContract):
    spec, hi, reference_field = "chrf", 100.0, "reference"
    best, worst = (REFERENCE, REF, 100.0), ("xyz", REF, 0.0)


class TestRougeL(ScorerContract):
    spec, hi, reference_field = {"name": "rouge_l", "field": "reference"}, 100.0, "reference"
    best, worst = (REFERENCE, REF, 100.0), ("banana", REF, 0.0)


def test_every_registered_scorer_has_a_contract_run():
    covered = {c.spec if isinstance(c.spec, str) else c.spec["name"]
               for c in ScorerContract.__subclasses__() if c.__module__ == __name__}
    assert covered == set(SCORERS.names())
