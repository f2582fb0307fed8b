"""Hybrid retrieval: score fusion, window parents, modes, distinct documents."""
from __future__ import annotations

import pytest

from llmlab.errors import InvalidParameterError
from llmlab.rag.collection import Collection
from llmlab.rag.ingest import ingest
from llmlab.rag.retrieve import MODES, FusionWeights, Retriever, first_per_document, fuse, search
from llmlab.rag.types import ScoredPoint


def payload(doc, i=0):
    return {"kind": "chunk", "doc_id": doc, "chunk_index": i, "text": f"{doc}-{i}", "source": doc}


class FakeStore:
    def __init__(self, extra=None):
        self.extra = {"c1": payload("a"), "c2": payload("b"), "c4": payload("c"), **(extra or {})}

    def retrieve(self, ids, fields=None):
        return [ScoredPoint(i, 0.0, self.extra[i]) for i in ids if i in self.extra]


class FakeCollection:
    def __init__(self, store):
        self.store = store


def test_fusion_scales_and_weighs_each_retriever():
    r = Retriever(FakeCollection(FakeStore({"c3": payload("z")})), FusionWeights(bm25=0.4, window=0.3, dense=0.3))
    results = {
        "bm25": [ScoredPoint("c1", 10.0, payload("a")), ScoredPoint("c2", 5.0, payload("b"))],
        "dense": [ScoredPoint("c2", 0.9, payload("b")), ScoredPoint("c1", 0.8, payload("a")),
                  ScoredPoint("c4", 0.7, payload("c"))],
        "window": [ScoredPoint("w1", 4.0, {"kind": "window", "parent": "c2"}),
                   ScoredPoint("w2", 2.0, {"kind": "window", "parent": "c3"}),
                   ScoredPoint("w3", 1.0, {"kind": "window", "parent": "c2"})],
    }
    hits = fuse(results, r.weights, r.collection.store, k=10)
    scores = {h.id: round(h.score, 4) for h in hits}
    assert scores == {"c2": round(0.4 * 0.5 + 0.3 * 1.0 + 0.3 * 1.0, 4), "c1": round(0.4 * 1.0 + 0.3 * 0.5, 4),
                      "c3": round(0.3 * 0.5, 4), "c4": 0.0}
    assert [h.id for h in hits][:2] == ["c2", "c1"]
    c2 = hits[0]
    assert c2.scores == {"bm25": 5.0, "window": 4.0, "dense": 0.9}  # raw scores, for display
    assert hits[2].chunk.doc_id == "z"  # a chunk found only through a window


def test_modes_and_validation():
    assert set(MODES) == {"hybrid", "bm25", "dense", "lexical"}
    with pytest.raises(InvalidParameterError, match="valid: hybrid"):
        Retriever(FakeCollection(FakeStore()), "magic")
    with pytest.raises(InvalidParameterError):
        FusionWeights(bm25=0, window=0, dense=0)


def test_first_per_document_keeps_rank_order():
    from llmlab.rag.types import Chunk, Hit

    hits = [Hit(str(i), 1.0, Chunk(doc_id=d, index=i, text="", source="")) for i, d in enumerate("aabca")]
    assert [h.chunk.doc_id for h in first_per_document(hits)] == ["a", "b", "c"]


def test_search_end_to_end_with_fakes(docs_dir, fast_config):
    ingest([docs_dir], "t", **fast_config)
    hits = search("목성에는 대적점이", "t", k=3)
    assert hits[0].chunk.doc_id == "rec-2"
    assert hits[0].scores["bm25"] > 0 and "dense" in hits[0].scores
    assert hits == sorted(hits, key=lambda h: -h.score)
    d = hits[0].to_dict()
    assert {"score", "doc_id", "source", "page", "section", "text", "char_start", "char_end"} <= set(d)
    assert search("목성에는 대적점이", "t", k=2, mode="bm25")[0].chunk.doc_id == "rec-2"


def test_search_documents_returns_distinct_documents(docs_dir, fast_config):
    ingest([docs_dir], "t", **fast_config)
    with Collection.open("t") as coll:
        r = Retriever(coll)
        docs = r.search_documents("문서", 5)
        assert len({h.chunk.doc_id for h in docs}) == len(docs) == 5


def test_missing_collection_names_the_fix():
    from llmlab.rag.types import CollectionNotFoundError

    with pytest.raises(CollectionNotFoundError, match="llmlab rag ingest PATH --collection nope"):
        search("x", "nope")
