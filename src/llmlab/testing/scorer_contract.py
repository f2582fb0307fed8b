"""The contract every prompt scorer (:data:`llmlab.prompts.scorers.SCORERS`) must pass.

Subclass :class:`ScorerContract`, set ``spec`` (as a grid file writes it), the range
``lo``..``hi`` (``hi=None``: unbounded), a ``best`` and a ``worst`` case (output, input,
expected score) and ``reference_field`` for scorers that compare with the input. It checks
that every score is a float in range for varied outputs (Korean, English, JSON, empty), that
the extremes come out exactly, that an empty prediction scores ``lo`` instead of failing,
that a missing reference gives ``None`` (not scored) rather than a made-up number, and that
scoring is repeatable.
"""
from __future__ import annotations

import math
from typing import Any

import pytest

from llmlab.prompts.scorers import SCORERS, make_scorer
from llmlab.prompts.template import PromptTemplate

REFERENCE = "서울은 대한민국의 수도이다."
OUTPUTS = [REFERENCE, "The capital of Korea is Seoul.", "", "   \n", '{"answer": "서울"}', "가" * 2000,
           "서울 Seoul 서울 123 !?", "```json\n[1, 2]\n```"]


class ScorerContract:
    """Behavioural tests of one scorer. Set the class attributes."""

    spec: str | dict[str, Any] = ""
    lo: float = 0.0
    hi: float | None = 1.0
    best: tuple[str, dict[str, Any], float] = ("", {}, 1.0)
    worst: tuple[str, dict[str, Any], float] = ("", {}, 0.0)
    reference_field: str | None = None

    @pytest.fixture
    def template(self) -> PromptTemplate:
        return PromptTemplate(name="contract", template="{{ question }}")

    @pytest.fixture
    def scorer(self):
        return make_scorer(self.spec)[1]

    def inputs(self) -> dict[str, Any]:
        return {self.reference_field: REFERENCE} if self.reference_field else {}

    def test_registered(self):
        name = self.spec if isinstance(self.spec, str) else self.spec["name"]
        assert name in SCORERS

    def test_scores_are_floats_in_range(self, scorer, template):
        for out in OUTPUTS:
            s = scorer(out, self.inputs(), template)
            assert isinstance(s, float) and not math.isnan(s), (out[:20], s)
            assert s >= self.lo and (self.hi is None or s <= self.hi), (out[:20], s)

    def test_extremes(self, scorer, template):
        for out, inp, want in (self.best, self.worst):
            assert scorer(out, inp, template) == pytest.approx(want), out

    def test_empty_prediction_scores_lo(self, scorer, template):
        assert scorer("", self.inputs(), template) == self.lo

    def test_missing_reference_is_not_scored(self, scorer, template):
        if self.reference_field is None:
            assert isinstance(scorer("x", {}, template), float)  # needs no reference
        else:
            assert scorer(REFERENCE, {}, template) is None
            assert scorer(REFERENCE, {"other": REFERENCE}, template) is None

    def test_repeatable(self, scorer, template):
        assert [scorer(o, self.inputs(), template) for o in OUTPUTS] == \
               [scorer(o, self.inputs(), template) for o in OUTPUTS]
