"""The ``VectorStore`` seam: where chunks, their vectors and payloads live.

Two implementations share one collection schema, so a collection can move between them:

* ``edge`` (default): Qdrant Edge, the Qdrant engine embedded in this process;
* ``qdrant``: a Qdrant server or cluster through ``qdrant-client`` (``url``), or its
  local mode (``path``, or ``url=":memory:"``).

Schema: chunk points carry a dense vector ``dense`` (cosine; added by ingest's second,
dense phase, so a chunk may lack it for a while) and a sparse vector ``bm25``;
window points (a few sentences of a chunk) carry only a sparse ``bm25w``. Both sparse
vectors use Qdrant's IDF modifier, so the store applies IDF at query time. Payloads are
:meth:`~llmlab.rag.types.Chunk.payload` for chunks and ``{kind, doc_id, parent}`` for
windows. Every store passes the contract suite in :mod:`llmlab.testing.store_contract`.
"""
from __future__ import annotations

from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

from ...registry import Registry, lazy
from ..types import ScoredPoint, StoredPoint, VectorQuery

DENSE = "dense"
SPARSE = "bm25"
WINDOW = "bm25w"
SPARSE_VECTORS = (SPARSE, WINDOW)
#: payload fields returned with query results (the stored BM25 tokens stay in the store)
HIT_FIELDS = ("kind", "doc_id", "doc_hash", "chunk_index", "source", "title", "section", "page", "char_start",
              "char_end", "text", "parent")
DEFAULT_STORE = "edge"


@runtime_checkable
class VectorStore(Protocol):
    """One collection's points in some vector database."""

    name: str  # registry name: "edge", "qdrant"

    def exists(self) -> bool: ...

    def ensure(self, dim: int) -> None:
        """Create the collection with ``dim``-sized dense vectors if it does not exist."""
        ...

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        """Insert or replace points by id (ids are deterministic, so re-upserting is harmless)."""
        ...

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        """Delete every point (chunks and windows) of these documents."""
        ...

    def set_dense(self, vectors: dict[str, list[float]]) -> None:
        """Give existing chunk points (by id) their dense vector, leaving payload and sparse vectors."""
        ...

    def dense_vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """The dense vectors of these points, for those that have one."""
        ...

    def clear_dense(self) -> None:
        """Remove every point's dense vector (before re-embedding with another embedder of the same size)."""
        ...

    def query(self, queries: Sequence[VectorQuery], fields: Sequence[str] = HIT_FIELDS) -> list[list[ScoredPoint]]:
        """Nearest points for each query (dense: cosine; sparse: dot product with IDF), in one round trip."""
        ...

    def retrieve(self, ids: Sequence[str], fields: Sequence[str] = HIT_FIELDS) -> list[ScoredPoint]:
        """Points by id (score 0), skipping ids that do not exist."""
        ...

    def count(self, doc_id: str | None = None, kind: str | None = "chunk") -> int:
        """Points of one kind (``None``: all), optionally of one document."""
        ...

    def scroll(self, with_vectors: bool = False) -> Iterator[StoredPoint]:
        """Every point with its full payload (and vectors when asked)."""
        ...

    def flush(self) -> None:
        """Make every write so far durable."""
        ...

    def optimize(self) -> None:
        """Build indexes (HNSW) after a bulk write; a no-op where the store does it itself."""
        ...

    def drop(self) -> None:
        """Delete the whole collection."""
        ...

    def close(self) -> None: ...


#: store name -> factory(collection: str, *, path: Path, url: str | None, **options) -> VectorStore
STORES: Registry[Any] = Registry("vector store", group="llmlab.stores")  # plugins: entry points
STORES.register("edge", lazy("llmlab.rag.stores.edge", "EdgeStore"))
STORES.register("qdrant", lazy("llmlab.rag.stores.qdrant", "QdrantStore"))


def open_store(name: str, collection: str, **options: Any) -> VectorStore:
    """Open (not create) the ``name`` store of ``collection``; ``ensure`` creates it."""
    return STORES.get(name)(collection, **options)
