"""Hybrid retrieval: dense + chunk BM25 + sentence-window BM25, fused by normalised scores.

Plain RRF of dense and BM25 measured *worse* than BM25 alone on Korean QA, because e5-small
is much weaker than Kiwi-BM25 and RRF throws away how confident each retriever is. So we
fuse scores, not ranks: each list is scaled to [0, 1] (BM25 by its top score, cosine by
min–max over its candidates) and mixed with weights tuned on half of ko_rag's articles.
Sentence windows add a proximity signal: a chunk whose few sentences match the question
together beats one that matches its words scattered over many sentences.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameterError
from .collection import DEFAULT_COLLECTION, Collection
from .lexical import query_vector
from .stores import DENSE, SPARSE, WINDOW
from .types import Chunk, Hit, ScoredPoint, VectorQuery


@dataclass(frozen=True)
class FusionWeights:
    """How much each retriever counts; tuned on ko_rag's tuning half (see docs/rag.md)."""

    bm25: float = 0.4  # chunk-level BM25
    window: float = 0.3  # best sentence-window BM25 inside the chunk
    dense: float = 0.30  # e5 cosine
    candidates: int = 50  # per retriever

    def __post_init__(self):
        if min(self.bm25, self.window, self.dense) < 0 or self.bm25 + self.window + self.dense <= 0:
            raise InvalidParameterError("fusion weights must be ≥ 0 and not all 0")


#: named retrieval modes, for comparisons (eval --mode) — "hybrid" is the default
MODES: dict[str, FusionWeights] = {
    "hybrid": FusionWeights(),
    "bm25": FusionWeights(bm25=1.0, window=0.0, dense=0.0),
    "dense": FusionWeights(bm25=0.0, window=0.0, dense=1.0),
    "lexical": FusionWeights(bm25=0.5, window=0.5, dense=0.0),
}


def _scale_max(points: list[ScoredPoint]) -> dict[str, float]:
    top = max((p.score for p in points), default=0.0)
    return {p.id: p.score / top for p in points} if top > 0 else {}


def _scale_minmax(points: list[ScoredPoint]) -> dict[str, float]:
    if not points:
        return {}
    lo, hi = min(p.score for p in points), max(p.score for p in points)
    if hi - lo < 1e-9:
        return {p.id: 1.0 for p in points}
    return {p.id: (p.score - lo) / (hi - lo) for p in points}


class Retriever:
    """Searches one open collection (keeps the embedder and tokenizer loaded between queries)."""

    def __init__(self, collection: Collection, weights: FusionWeights | str = "hybrid"):
        self.collection = collection
        if isinstance(weights, str):
            if weights not in MODES:
                raise InvalidParameterError(f"unknown retrieval mode {weights!r}; valid: {', '.join(MODES)}")
            weights = MODES[weights]
        self.weights = weights

    def query_terms(self, query: str) -> list[str]:
        return self.collection.tokenizer(query)

    def search(self, query: str, k: int = 5, *, candidates: int | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first, with per-retriever scores."""
        w = self.weights
        n = max(candidates or w.candidates, k)
        coll = self.collection
        if not coll.store.exists():
            return []
        queries: list[VectorQuery] = []
        kinds: list[str] = []
        terms = self.query_terms(query)
        if terms and w.bm25 > 0:
            queries.append(VectorQuery(SPARSE, query_vector(terms), n))
            kinds.append("bm25")
        if terms and w.window > 0:
            queries.append(VectorQuery(WINDOW, query_vector(terms), n))
            kinds.append("window")
        if w.dense > 0:
            queries.append(VectorQuery(DENSE, coll.embedder.embed_query(query).tolist(), n))
            kinds.append("dense")
        results = dict(zip(kinds, coll.store.query(queries))) if queries else {}
        return self._fuse(results, k)

    def _fuse(self, results: dict[str, list[ScoredPoint]], k: int) -> list[Hit]:
        w = self.weights
        payloads: dict[str, dict[str, Any]] = {}
        raw: dict[str, dict[str, float]] = {"bm25": {}, "window": {}, "dense": {}}
        for kind in ("bm25", "dense"):
            for p in results.get(kind, []):
                payloads[p.id] = p.payload
                raw[kind][p.id] = p.score
        scaled = {"bm25": _scale_max(results.get("bm25", [])), "dense": _scale_minmax(results.get("dense", []))}
        window_best: dict[str, float] = {}
        for p in results.get("window", []):  # a chunk counts its best-matching window
            parent = p.payload.get("parent")
            if parent and p.score > window_best.get(parent, 0.0):
                window_best[parent] = p.score
        top = max(window_best.values(), default=0.0)
        scaled["window"] = {cid: s / top for cid, s in window_best.items()} if top > 0 else {}
        raw["window"] = window_best
        missing = [cid for cid in window_best if cid not in payloads]
        for p in self.collection.store.retrieve(missing):
            payloads[p.id] = p.payload
        fused = []
        for cid, payload in payloads.items():
            score = (w.bm25 * scaled["bm25"].get(cid, 0.0) + w.window * scaled["window"].get(cid, 0.0)
                     + w.dense * scaled["dense"].get(cid, 0.0))
            scores = {kind: raw[kind][cid] for kind in raw if cid in raw[kind]}
            fused.append(Hit(id=cid, score=score, chunk=Chunk.from_payload(payload), scores=scores))
        fused.sort(key=lambda h: (-h.score, h.chunk.doc_id, h.chunk.index))
        return fused[:k]

    def rank(self, query: str, n_docs: int) -> list[Hit]:
        """Ranked chunks, as many as it takes to cover ``n_docs`` distinct documents (or all)."""
        candidates = max(self.weights.candidates, n_docs)
        total = max(1, self.collection.store.count())
        while True:
            hits = self.search(query, k=candidates, candidates=candidates)
            if len({h.chunk.doc_id for h in hits}) >= n_docs or candidates >= total:
                return hits
            candidates *= 4

    def search_documents(self, query: str, n_docs: int) -> list[Hit]:
        """The best chunk of each of the ``n_docs`` best documents, in rank order."""
        return first_per_document(self.rank(query, n_docs))[:n_docs]


def first_per_document(hits: list[Hit]) -> list[Hit]:
    firsts: dict[str, Hit] = {}
    for h in hits:
        firsts.setdefault(h.chunk.doc_id, h)
    return list(firsts.values())


def search(query: str, collection: str = DEFAULT_COLLECTION, k: int = 5, *, mode: str = "hybrid",
           settings=None) -> list[Hit]:
    """Search a collection by name (opens and closes it; use :class:`Retriever` for many queries)."""
    with Collection.open(collection, settings=settings) as coll:
        return Retriever(coll, mode).search(query, k)
