"""The contract every reranker (:data:`llmlab.rag.rerank.RERANKERS`) must pass.

Subclass :class:`RerankerContract` in a test module and provide a ``reranker`` fixture.
It checks what retrieval relies on: one finite-or-``-inf`` score per text, the obvious
passage first, the candidate set kept (re-ordered, never dropped or duplicated), equal
texts scored equally and left in their input order, and empty input answered with empty
output. Override ``QUERY`` / ``RELEVANT`` / ``DISTRACTORS`` for a model that needs an
easier case.
"""
from __future__ import annotations

import math

import pytest

from llmlab.rag.rerank import Reranker, rerank
from llmlab.rag.types import Chunk, Hit


def hits(texts: list[str]) -> list[Hit]:
    """Candidates in fused order (the first has the highest fused score)."""
    return [Hit(f"h{i}", 1.0 - i / 100, Chunk(doc_id=f"d{i}", index=0, text=t, source=f"s{i}"))
            for i, t in enumerate(texts)]


class RerankerContract:
    """Behavioural tests of a reranker. Provide a ``reranker`` fixture."""

    QUERY = "대한민국의 수도는 어디인가요?"
    RELEVANT = "대한민국의 수도는 서울이다."
    DISTRACTORS = ["바나나는 노란색 과일이다.", "고양이는 하루에 열두 시간 넘게 잔다."]

    @pytest.fixture
    def reranker(self) -> Reranker:  # pragma: no cover - subclasses provide it
        raise NotImplementedError

    def test_is_a_reranker_with_a_name(self, reranker):
        assert isinstance(reranker, Reranker) and reranker.name

    def test_one_score_per_text(self, reranker):
        scores = reranker.scores(self.QUERY, [*self.DISTRACTORS, self.RELEVANT])
        assert len(scores) == len(self.DISTRACTORS) + 1
        assert all(isinstance(s, float) and not math.isnan(s) and s != math.inf for s in scores)

    def test_the_obvious_passage_comes_first(self, reranker):
        out = rerank(reranker, self.QUERY, hits([*self.DISTRACTORS, self.RELEVANT]))
        assert out[0].chunk.text == self.RELEVANT, [(h.chunk.text, h.score) for h in out]

    def test_the_candidate_set_is_kept(self, reranker):
        given = hits([*self.DISTRACTORS, self.RELEVANT])
        out = rerank(reranker, self.QUERY, given)
        assert sorted(h.id for h in out) == sorted(h.id for h in given)
        assert all(h.scores["fused"] == g.score for h in out for g in given if g.id == h.id)
        assert [h.score for h in out] == sorted((h.score for h in out), reverse=True)

    def test_equal_texts_tie_and_keep_their_order(self, reranker):
        texts = [self.DISTRACTORS[0], self.RELEVANT, self.DISTRACTORS[0], self.DISTRACTORS[0]]
        scores = reranker.scores(self.QUERY, texts)
        assert scores[0] == scores[2] == scores[3]
        out = rerank(reranker, self.QUERY, hits(texts))
        same = [h.id for h in out if h.chunk.text == self.DISTRACTORS[0]]
        assert same == ["h0", "h2", "h3"]

    def test_scores_are_repeatable(self, reranker):
        texts = [*self.DISTRACTORS, self.RELEVANT]
        assert reranker.scores(self.QUERY, texts) == reranker.scores(self.QUERY, texts)

    def test_empty_input(self, reranker):
        assert reranker.scores(self.QUERY, []) == []
        assert rerank(reranker, self.QUERY, []) == []
