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

_ID_FIELDS = ("parent",)  # candidates need only their window's parent; winners' payloads come after


@dataclass(frozen=True)
class FusionWeights:
    """How much each retriever counts; tuned on ko_rag's tuning half (see docs/rag.md)."""

    bm25: float = 0.4  # chunk-level BM25
    window: float = 0.3  # best sentence-window BM25 inside the chunk
    dense: float = 0.3  # e5 cosine
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


def _scale_max(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values(), default=0.0)
    return {i: s / top for i, s in scores.items()} if top > 0 else {}


def _scale_minmax(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo < 1e-9:
        return {i: 1.0 for i in scores}
    return {i: (s - lo) / (hi - lo) for i, s in scores.items()}


class Retriever:
    """Searches one open collection (keeps the embedder and tokenizer loaded between queries)."""

    def __init__(self, collection: Collection, weights: FusionWeights | str = "hybrid", *, reranker: Any = None,
                 rerank_candidates: int = 20):
        self.collection = collection
        self.reranker = reranker  # a llmlab.rag.rerank.Reranker, applied to the top fused candidates
        self.rerank_candidates = rerank_candidates
        if isinstance(weights, str):
            if weights not in MODES:
                raise InvalidParameterError(f"unknown retrieval mode {weights!r}; valid: {', '.join(MODES)}")
            weights = MODES[weights]
        self.weights = weights

    def has_dense(self) -> bool:
        """Whether any chunk has a dense vector (of the current embedder) yet.

        Right after the lexical phase of an ingest none does, and the search is lexical;
        during the dense phase the chunks that have one are fused with their dense score.
        """
        coll = self.collection
        if coll.config.dense_reset:
            coll.reload_config()
            if coll.config.dense_reset:
                return False
        return coll.manifest.any_dense()

    def query_terms(self, query: str) -> list[str]:
        return self.collection.tokenizer(query)

    def key_term_weights(self, query: str) -> dict[str, float]:
        """Each of the question's key terms (nouns) with its best single-term BM25 score in the collection.

        The score is the term's IDF times its (saturated) frequency in the chunk that holds it
        most, so it works as a rarity weight; 0.0 means no chunk holds the term. One sparse
        query per term, all in one round trip (the refusal model reads these,
        :mod:`llmlab.rag.abstain`).
        """
        terms = sorted(set(self.collection.tokenizer.key_terms(query)))
        if not terms or not self.collection.store.exists():
            return {}
        found = self.collection.store.query([VectorQuery(SPARSE, query_vector([t]), 1) for t in terms], fields=("kind",))
        return {t: (float(r[0].score) if r else 0.0) for t, r in zip(terms, found)}

    def unknown_share(self, query: str) -> float:
        """Share of the question's key terms (nouns) that occur in no chunk of the collection.

        A question about something the documents never mention is likely unanswerable.
        """
        from .abstain import unknown_share

        return unknown_share(self.key_term_weights(query))

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
        if w.dense > 0 and self.has_dense():
            queries.append(VectorQuery(DENSE, coll.embedder.embed_query(query).tolist(), n))
            kinds.append("dense")
        results = dict(zip(kinds, coll.store.query(queries, fields=_ID_FIELDS))) if queries else {}
        if self.reranker is None:
            return fuse(results, self.weights, coll.store, k)
        from .rerank import rerank

        top = fuse(results, self.weights, coll.store, max(k, self.rerank_candidates))
        head = rerank(self.reranker, query, top[:self.rerank_candidates])
        return (head + top[self.rerank_candidates:])[:k]

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


def fuse(results: dict[str, list[ScoredPoint]], weights: FusionWeights, store: Any, k: int) -> list[Hit]:
    """Fuse per-retriever results (``bm25``, ``window``, ``dense``) into the ``k`` best chunks.

    Scores are fused by point id; only the ``k`` winners' payloads are then read from
    ``store`` — cheaper than shipping every candidate's text.
    """
    w = weights
    raw: dict[str, dict[str, float]] = {
        "bm25": {p.id: p.score for p in results.get("bm25", [])},
        "dense": {p.id: p.score for p in results.get("dense", [])},
        "window": {},
    }
    for p in results.get("window", []):  # a chunk counts its best-matching window
        parent = p.payload.get("parent")
        if parent and p.score > raw["window"].get(parent, 0.0):
            raw["window"][parent] = p.score
    scaled = {"bm25": _scale_max(raw["bm25"]), "window": _scale_max(raw["window"]),
              "dense": _scale_minmax(raw["dense"])}
    fused = {cid: w.bm25 * scaled["bm25"].get(cid, 0.0) + w.window * scaled["window"].get(cid, 0.0)
             + w.dense * scaled["dense"].get(cid, 0.0)
             for cid in set(raw["bm25"]) | set(raw["window"]) | set(raw["dense"])}
    top = sorted(fused, key=lambda cid: (-fused[cid], cid))[:k]
    payloads = {p.id: p.payload for p in store.retrieve(top)}
    return [Hit(id=cid, score=fused[cid], chunk=Chunk.from_payload(payloads[cid]),
                scores={kind: raw[kind][cid] for kind in raw if cid in raw[kind]})
            for cid in top if cid in payloads]


def first_per_document(hits: list[Hit]) -> list[Hit]:
    firsts: dict[str, Hit] = {}
    for h in hits:
        firsts.setdefault(h.chunk.doc_id, h)
    return list(firsts.values())


def search(query: str, collection: str = DEFAULT_COLLECTION, k: int = 5, *, mode: str = "hybrid",
           rerank: str | None = None, settings=None) -> list[Hit]:
    """Search a collection by name (opens and closes it; use :class:`Retriever` for many queries).

    ``rerank`` names a reranker (``cross:NAME``, ``llm:MODEL``) for the top candidates.
    """
    reranker = None
    if rerank:
        from .rerank import load_reranker

        reranker = load_reranker(rerank)
    with Collection.open(collection, settings=settings) as coll:
        return Retriever(coll, mode, reranker=reranker).search(query, k)
