"""The ``VectorStore`` seam: where chunks, their vectors and payloads live.

Two implementations share one collection schema — a dense vector ``dense`` (cosine), a
sparse vector ``bm25`` with Qdrant's IDF modifier, and the payload of
:meth:`~llmlab.rag.types.Chunk.payload` — so a collection can move between them:

* ``edge`` (default): Qdrant Edge, the Qdrant engine embedded in this process;
* ``qdrant``: a Qdrant server or cluster through ``qdrant-client`` (``url``), or its
  local mode (``path`` or ``:memory:``).

Every store passes the contract suite in :mod:`llmlab.testing.store_contract`.
"""
from __future__ import annotations

from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

from ...registry import Registry, lazy
from ..types import Hit, SparseVector, StoredChunk

DENSE = "dense"
SPARSE = "bm25"
#: payload fields returned with hits (the stored BM25 tokens stay in the store)
HIT_FIELDS = ["doc_id", "doc_hash", "chunk_index", "source", "title", "section", "page", "char_start", "char_end",
              "text"]
DEFAULT_STORE = "edge"


@runtime_checkable
class VectorStore(Protocol):
    """One collection's chunks in some vector database."""

    name: str  # registry name: "edge", "qdrant"

    def ensure(self, dim: int) -> None:
        """Create the collection with ``dim``-sized dense vectors if it does not exist."""
        ...

    def exists(self) -> bool: ...

    def upsert(self, points: Sequence[StoredChunk]) -> None:
        """Insert or replace points by id (ids are deterministic, so re-upserting is harmless)."""
        ...

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        """Delete every chunk of these documents."""
        ...

    def search(self, dense: Sequence[float] | None, sparse: SparseVector | None, limit: int) -> tuple[list[Hit], list[Hit]]:
        """Top ``limit`` chunks by dense cosine and by BM25 (IDF applied by the store), in one round trip."""
        ...

    def count(self, doc_id: str | None = None) -> int: ...

    def scroll(self, with_vectors: bool = False) -> Iterator[tuple[str, dict[str, Any], Any]]:
        """Every point as ``(id, payload, vectors-or-None)``."""
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
STORES: Registry[Any] = Registry("vector store")
STORES.register("edge", lazy("llmlab.rag.stores.edge", "EdgeStore"))
STORES.register("qdrant", lazy("llmlab.rag.stores.qdrant", "QdrantStore"))


def open_store(name: str, collection: str, **options: Any) -> VectorStore:
    return STORES.get(name)(collection, **options)
