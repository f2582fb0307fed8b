"""The contract every :class:`~llmlab.rag.stores.VectorStore` must pass.

Subclass :class:`StoreContract` in a test module and provide a ``store`` fixture (a fresh,
not yet created store) and ``reopen`` (a function that closes and opens it again); every
behaviour RAG relies on — schema, upsert by id, deleting a document's points, dense and
IDF-weighted sparse search, counting, scrolling, persistence — is then checked.
"""
from __future__ import annotations

import math

import pytest

from llmlab.rag.stores import DENSE, SPARSE, WINDOW
from llmlab.rag.types import SparseVector, StoredPoint, VectorQuery

DIM = 4


def chunk_point(pid: str, doc: str, index: int, dense, terms: dict[int, float], text: str = "") -> StoredPoint:
    idx = sorted(terms)
    return StoredPoint(pid, {DENSE: list(dense), SPARSE: SparseVector(idx, [terms[i] for i in idx])}, {
        "kind": "chunk", "doc_id": doc, "doc_hash": "h", "chunk_index": index, "source": f"{doc}.txt", "title": doc,
        "section": None, "page": 1, "char_start": 0, "char_end": len(text), "text": text or f"{doc} {index}",
        "tokens": ["t"]})


def window_point(pid: str, doc: str, parent: str, terms: dict[int, float]) -> StoredPoint:
    idx = sorted(terms)
    return StoredPoint(pid, {WINDOW: SparseVector(idx, [terms[i] for i in idx])},
                       {"kind": "window", "doc_id": doc, "parent": parent})


def uid(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012d}"


class StoreContract:
    """Behavioural tests of a vector store. Provide ``store`` and ``reopen`` fixtures."""

    @pytest.fixture
    def store(self):  # pragma: no cover - subclasses provide it
        raise NotImplementedError

    @pytest.fixture
    def reopen(self):  # pragma: no cover - subclasses provide it
        raise NotImplementedError

    @pytest.fixture
    def filled(self, store):
        store.ensure(DIM)
        store.upsert([
            chunk_point(uid(1), "a", 0, [1, 0, 0, 0], {10: 1.0, 11: 1.0}, "alpha one"),
            chunk_point(uid(2), "a", 1, [0.9, 0.1, 0, 0], {10: 1.0, 12: 1.0}, "alpha two"),
            chunk_point(uid(3), "b", 0, [0, 1, 0, 0], {10: 1.0, 13: 1.0}, "beta"),
            window_point(uid(4), "a", uid(1), {11: 1.0}),
            window_point(uid(5), "b", uid(3), {13: 1.0}),
        ])
        store.flush()
        return store

    def test_ensure_is_idempotent(self, store):
        assert not store.exists()
        store.ensure(DIM)
        store.ensure(DIM)
        assert store.exists()
        assert store.count() == 0

    def test_count_by_kind_and_document(self, filled):
        assert filled.count() == 3
        assert filled.count(kind="window") == 2
        assert filled.count(kind=None) == 5
        assert filled.count("a") == 2
        assert filled.count("a", kind=None) == 3
        assert filled.count("zzz") == 0

    def test_upsert_same_id_replaces(self, filled):
        filled.upsert([chunk_point(uid(1), "a", 0, [1, 0, 0, 0], {10: 1.0}, "alpha one, edited")])
        assert filled.count() == 3
        [p] = filled.retrieve([uid(1)])
        assert p.payload["text"] == "alpha one, edited"

    def test_delete_documents_removes_chunks_and_windows(self, filled):
        filled.delete_documents(["a"])
        assert filled.count("a", kind=None) == 0
        assert filled.count(kind=None) == 2
        filled.delete_documents(["a", "nope"])  # deleting again or unknown ids is fine
        assert filled.count(kind=None) == 2

    def test_dense_query_orders_by_cosine(self, filled):
        [hits] = filled.query([VectorQuery(DENSE, [1, 0, 0, 0], 3)])
        assert [h.id for h in hits] == [uid(1), uid(2), uid(3)]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[0].payload["doc_id"] == "a" and hits[0].payload["text"] == "alpha one"
        assert "tokens" not in hits[0].payload  # stored, but not shipped with every hit

    def test_sparse_query_applies_idf(self, filled):
        # term 10 is in all 3 chunks, term 13 in one: IDF makes 13 worth far more
        [hits] = filled.query([VectorQuery(SPARSE, SparseVector([10, 13], [1.0, 1.0]), 3)])
        assert hits[0].id == uid(3)
        n, df = 3, 1
        idf13 = math.log(1 + (n - df + 0.5) / (df + 0.5))
        idf10 = math.log(1 + (n - 3 + 0.5) / (3 + 0.5))
        assert hits[0].score == pytest.approx(idf13 + idf10, rel=1e-3)

    def test_batched_queries_and_windows(self, filled):
        dense, windows = filled.query([VectorQuery(DENSE, [0, 1, 0, 0], 1),
                                       VectorQuery(WINDOW, SparseVector([11], [1.0]), 5)])
        assert [h.id for h in dense] == [uid(3)]
        assert [h.id for h in windows] == [uid(4)]
        assert windows[0].payload["parent"] == uid(1)

    def test_idf_follows_the_collection(self, filled):
        [before] = filled.query([VectorQuery(SPARSE, SparseVector([13], [1.0]), 1)])
        filled.upsert([chunk_point(uid(9), "c", 0, [0, 0, 1, 0], {13: 1.0})])
        [after] = filled.query([VectorQuery(SPARSE, SparseVector([13], [1.0]), 1)])
        assert after[0].score < before[0].score  # term 13 got commoner, so it weighs less

    def test_retrieve_skips_missing(self, filled):
        got = filled.retrieve([uid(3), uid(77)])
        assert [p.id for p in got] == [uid(3)]

    def test_scroll_returns_everything(self, filled):
        points = list(filled.scroll(with_vectors=True))
        assert sorted(p.id for p in points) == [uid(i) for i in range(1, 6)]
        chunk = next(p for p in points if p.id == uid(3))
        assert chunk.payload["tokens"] == ["t"]
        assert isinstance(chunk.vectors[SPARSE], SparseVector) and len(chunk.vectors[DENSE]) == DIM

    def test_persists_across_reopen(self, filled, reopen):
        store = reopen(filled)
        assert store.count(kind=None) == 5
        [hits] = store.query([VectorQuery(DENSE, [0, 1, 0, 0], 1)])
        assert hits[0].id == uid(3)

    def test_drop(self, filled):
        filled.drop()
        assert not filled.exists()
