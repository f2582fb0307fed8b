"""The contract every :class:`~llmlab.rag.embedders.Embedder` must pass.

Subclass :class:`EmbedderContract` in a test module, provide an ``embedder`` fixture (a
loaded embedder; class or module scope keeps real models loaded once) and declare
``distinct_roles`` (whether queries and documents are embedded differently, as e5's
``query:``/``passage:`` roles do). Every behaviour RAG relies on is then checked: the
dimension and dtype, unit norm, the roles, empty input, input far over ``max_tokens``,
batching invariance (a text alone equals the same text in a batch), token counting.
"""
from __future__ import annotations

import numpy as np
import pytest

TEXTS = [
    "근로자에게 연차 유급휴가를 주어야 한다.",
    "고양이는 쥐를 잡는 동물이다. 고양이는 잠을 많이 잔다.",
    "태양계에서 가장 큰 행성은 목성이다.",
    "The quick brown fox jumps over the lazy dog.",
]
QUERY = "연차 휴가는 며칠인가?"
LONG = "대한민국의 수도는 서울이다. 서울에는 한강이 흐르고 많은 사람이 산다. " * 120


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


class EmbedderContract:
    """Behavioural tests of an embedder. Provide an ``embedder`` fixture; set ``distinct_roles``."""

    distinct_roles: bool = False
    #: the least cosine between a text embedded alone and the same text inside a batch
    batch_invariance: float = 0.999

    @pytest.fixture
    def embedder(self):  # pragma: no cover - subclasses provide it
        raise NotImplementedError

    def test_dimension_and_dtype(self, embedder):
        assert isinstance(embedder.dim, int) and embedder.dim > 0
        assert isinstance(embedder.name, str) and embedder.name
        rows = embedder.embed_documents(TEXTS)
        assert rows.shape == (len(TEXTS), embedder.dim) and rows.dtype == np.float32
        q = embedder.embed_query(QUERY)
        assert q.shape == (embedder.dim,) and q.dtype == np.float32

    def test_unit_norm(self, embedder):
        rows = embedder.embed_documents(TEXTS)
        assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-3)
        assert np.linalg.norm(embedder.embed_query(QUERY)) == pytest.approx(1.0, abs=1e-3)
        assert np.isfinite(rows).all()

    def test_texts_get_different_vectors(self, embedder):
        rows = embedder.embed_documents(TEXTS)
        sims = rows @ rows.T
        assert (sims[~np.eye(len(TEXTS), dtype=bool)] < 0.999).all()

    def test_roles(self, embedder):
        text = TEXTS[0]
        as_query, as_doc = embedder.embed_query(text), embedder.embed_documents([text])[0]
        if self.distinct_roles:
            assert _cos(as_query, as_doc) < 0.9999, "queries and documents should be embedded with their own roles"
        else:
            assert _cos(as_query, as_doc) > 0.999

    def test_query_finds_its_document(self, embedder):
        rows = embedder.embed_documents(TEXTS)
        scores = rows @ embedder.embed_query(QUERY)
        assert int(np.argmax(scores)) == 0

    def test_empty_input(self, embedder):
        none = embedder.embed_documents([])
        assert none.shape == (0, embedder.dim) and none.dtype == np.float32
        [empty] = embedder.embed_documents([""])
        assert empty.shape == (embedder.dim,) and np.isfinite(empty).all()
        assert np.linalg.norm(empty) == pytest.approx(1.0, abs=1e-3)

    def test_very_long_input(self, embedder):
        assert embedder.count_tokens(LONG) > embedder.max_tokens
        [long] = embedder.embed_documents([LONG])
        assert np.isfinite(long).all() and np.linalg.norm(long) == pytest.approx(1.0, abs=1e-3)
        assert _cos(long, embedder.embed_documents([TEXTS[2]])[0]) < 0.999

    def test_batching_invariance(self, embedder):
        alone = embedder.embed_documents([TEXTS[1]])[0]
        batch = embedder.embed_documents([TEXTS[0], LONG, TEXTS[1], TEXTS[3], "짧다"])
        assert _cos(alone, batch[2]) >= self.batch_invariance
        assert _cos(embedder.embed_documents([TEXTS[3]])[0], batch[3]) >= self.batch_invariance

    def test_repeated_text_gets_one_vector(self, embedder):
        rows = embedder.embed_documents([TEXTS[2], TEXTS[0], TEXTS[2]])
        assert np.array_equal(rows[0], rows[2])

    def test_count_tokens(self, embedder):
        short, longer = embedder.count_tokens(TEXTS[0]), embedder.count_tokens(TEXTS[0] * 4)
        assert isinstance(short, int) and 0 < short < longer
