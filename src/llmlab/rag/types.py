"""Typed data that crosses the RAG seams: documents, chunks, hits, reports, answers.

Loaders produce :class:`Document`; the chunker turns it into :class:`Chunk`; stores keep
:class:`StoredPoint` (a chunk or window with its vectors) and answer queries with
:class:`ScoredPoint`; retrieval turns those into ranked :class:`Hit`. Every ``to_dict``
gives the JSON the CLI prints.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from ..errors import LLMLabError


class RagError(LLMLabError):
    """A RAG operation failed; the message says what to do next."""

    code = "rag_error"


class CollectionNotFoundError(RagError):
    code = "collection_not_found"


class CollectionBusyError(RagError):
    """Another process holds the collection's store (an ingest or embedding pass); the message says how far it is."""

    code = "collection_busy"


@dataclass
class Document:
    """One loaded document: its text plus where pages and sections start in it.

    ``pages`` and ``sections`` are ``(char_offset, value)`` pairs sorted by offset; a chunk
    starting at offset ``o`` lies on the last page/section that starts at or before ``o``.
    """

    id: str
    source: str
    text: str
    title: str = ""
    pages: list[tuple[int, int]] = field(default_factory=list)
    sections: list[tuple[int, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def page_at(self, offset: int) -> int | None:
        return _value_at(self.pages, offset)

    def section_at(self, offset: int) -> str | None:
        return _value_at(self.sections, offset)


def _value_at(marks: list[tuple[int, Any]], offset: int) -> Any:
    if not marks:
        return None
    i = bisect.bisect_right([m[0] for m in marks], offset) - 1
    return marks[i][1] if i >= 0 else None


@dataclass
class Chunk:
    """A piece of a document small enough to embed, with where it came from."""

    doc_id: str
    index: int
    text: str
    source: str
    title: str = ""
    section: str | None = None
    page: int | None = None
    char_start: int = 0
    char_end: int = 0
    tokens: list[str] = field(default_factory=list)  # lexical (BM25) terms, stored at ingest
    sentences: list[tuple[int, int, int]] = field(default_factory=list, repr=False)  # (start, end, tokens); not stored

    def payload(self, doc_hash: str) -> dict[str, Any]:
        """The stored payload: the schema both store implementations share."""
        return {
            "kind": "chunk", "doc_id": self.doc_id, "doc_hash": doc_hash, "chunk_index": self.index, "source": self.source,
            "title": self.title, "section": self.section, "page": self.page, "char_start": self.char_start,
            "char_end": self.char_end, "text": self.text, "tokens": self.tokens,
        }

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> "Chunk":
        return cls(doc_id=p["doc_id"], index=int(p["chunk_index"]), text=p["text"], source=p.get("source", ""),
                   title=p.get("title") or "", section=p.get("section"), page=p.get("page"),
                   char_start=int(p.get("char_start") or 0), char_end=int(p.get("char_end") or 0),
                   tokens=list(p.get("tokens") or []))


@dataclass
class SparseVector:
    indices: list[int]
    values: list[float]


@dataclass
class StoredPoint:
    """What a store keeps for one point: a stable id, named vectors and the payload.

    A chunk point has a ``dense`` and a ``bm25`` vector and the chunk's payload; a window
    point (a few sentences of a chunk, for sentence-level BM25) has only ``bm25w`` and
    points to its chunk with ``parent``.
    """

    id: str
    vectors: dict[str, "list[float] | SparseVector"]
    payload: dict[str, Any]


@dataclass
class ScoredPoint:
    """A store's answer to a query: point id, score and (selected) payload."""

    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class VectorQuery:
    """One nearest-neighbour query against one named vector."""

    using: str
    vector: "list[float] | SparseVector"
    limit: int


@dataclass
class Hit:
    """One retrieved chunk with its score (and, after fusion, the per-retriever scores)."""

    id: str
    score: float
    chunk: Chunk
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {"id": self.id, "score": round(self.score, 6), "doc_id": c.doc_id, "source": c.source,
                "title": c.title, "section": c.section, "page": c.page, "chunk_index": c.index,
                "char_start": c.char_start, "char_end": c.char_end, "text": c.text,
                "scores": {k: round(v, 6) for k, v in self.scores.items()}}


@dataclass
class Skipped:
    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class IngestProgress:
    """Where an ingest phase stands: ``phase`` is ``lexical`` (load, chunk, BM25) or ``dense`` (embed)."""

    phase: str
    done: int  # chunks done in this phase
    total: int  # chunks this phase has to do
    seconds: float  # since the phase began

    @property
    def rate(self) -> float:
        """Chunks per second so far."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "done": self.done, "total": self.total, "seconds": round(self.seconds, 3),
                "chunks_per_s": round(self.rate, 2)}


@dataclass
class IngestReport:
    collection: str
    documents: int = 0  # documents (re)indexed in this run
    chunks: int = 0  # chunks written in this run
    unchanged: int = 0  # documents skipped because their content hash did not change
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    recovered: int = 0  # half-written documents from an interrupted run that were cleaned up
    embedded: int = 0  # texts the embedder read in this run
    reused: int = 0  # dense vectors copied from chunks with the same text instead of embedded
    dense_done: int = 0  # the collection's chunks with a dense vector, after this run
    dense_total: int = 0  # the collection's chunks

    @property
    def lexical_only(self) -> bool:
        """True while some chunks have no dense vector yet (``llmlab rag embed`` finishes them)."""
        return self.dense_done < self.dense_total

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "documents": self.documents, "chunks": self.chunks,
                "unchanged": self.unchanged, "skipped": [s.to_dict() for s in self.skipped],
                "seconds": round(self.seconds, 3), "recovered": self.recovered, "embedded": self.embedded,
                "reused": self.reused, "dense": {"done": self.dense_done, "total": self.dense_total}}


@dataclass
class Citation:
    n: int
    doc_id: str
    source: str
    page: int | None
    section: str | None
    text: str
    cited: bool = True  # whether the answer refers to it with [n] (all context chunks are listed)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "doc_id": self.doc_id, "source": self.source, "page": self.page,
                "section": self.section, "text": self.text, "cited": self.cited}


@dataclass
class Answer:
    answer: str
    citations: list[Citation]
    retrieved: list[Hit]
    usage: dict[str, int] = field(default_factory=dict)
    found: bool = True  # False when retrieval found nothing relevant
    run_id: int | None = None
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "citations": [c.to_dict() for c in self.citations],
                "retrieved": [h.to_dict() for h in self.retrieved], "usage": self.usage, "found": self.found,
                "model": self.model, "run_id": self.run_id}
