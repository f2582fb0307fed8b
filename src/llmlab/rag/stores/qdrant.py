"""A Qdrant server or cluster through ``qdrant-client`` — the scale-out store (``--store qdrant``).

``url`` names the server (``http://host:6333``); without one, qdrant-client's local mode
keeps the collection in a folder (or in memory with ``url=":memory:"``). Local mode
implements the same API, which is how the tests exercise this code without a server.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

from ...errors import BackendError, MissingDependencyError
from ..types import RagError, ScoredPoint, SparseVector, StoredPoint, VectorQuery
from . import DENSE, HIT_FIELDS, SPARSE_VECTORS

log = logging.getLogger(__name__)

_BATCH = 256
_MEMORY_CLIENTS: dict[str, Any] = {}  # ":memory:" collections live as long as the process


def _models():
    try:
        from qdrant_client import QdrantClient, models
    except ImportError:
        raise MissingDependencyError("qdrant-client", purpose="the Qdrant server store (--store qdrant)") from None
    return QdrantClient, models


class QdrantStore:
    name = "qdrant"

    def __init__(self, collection: str, *, path: Path | None = None, url: str | None = None,
                 api_key: str | None = None, timeout: int = 60, **_options: Any):
        QdrantClient, _ = _models()
        self.collection = collection
        self.url = url
        self._local = not url or url == ":memory:"  # local mode searches exactly; no HNSW params
        try:
            if url == ":memory:":
                # one in-memory client per collection name, so reopening sees the same data
                self.client = _MEMORY_CLIENTS.setdefault(collection, QdrantClient(location=":memory:"))
            elif url:
                self.client = QdrantClient(url=url, api_key=api_key, timeout=timeout)
            else:
                if path is None:
                    raise RagError("the qdrant store needs --url (a server) or a local path")
                Path(path).mkdir(parents=True, exist_ok=True)
                self.client = QdrantClient(path=str(path))
        except RagError:
            raise
        except Exception as e:  # noqa: BLE001 - connection and lock errors come in many types
            raise BackendError(f"cannot open Qdrant at {url or path}: {e}") from None

    # -- lifecycle -------------------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self.client.collection_exists(self.collection))

    def ensure(self, dim: int) -> None:
        if self.exists():
            return
        _, m = _models()
        self.client.create_collection(
            self.collection,
            vectors_config={DENSE: m.VectorParams(size=dim, distance=m.Distance.COSINE)},
            sparse_vectors_config={name: m.SparseVectorParams(modifier=m.Modifier.IDF) for name in SPARSE_VECTORS},
        )
        with warnings.catch_warnings():  # local mode warns that payload indexes are a no-op there
            warnings.simplefilter("ignore")
            for key in ("doc_id", "kind"):
                self.client.create_payload_index(self.collection, key, m.PayloadSchemaType.KEYWORD)

    def close(self) -> None:
        if self.url != ":memory:":
            self.client.close()

    def drop(self) -> None:
        if self.exists():
            self.client.delete_collection(self.collection)
        if self.url == ":memory:":
            _MEMORY_CLIENTS.pop(self.collection, None)

    def flush(self) -> None:
        """Writes are acknowledged with ``wait=True``; nothing is buffered here."""

    def optimize(self) -> None:
        """The server runs its optimizers itself."""

    # -- writing ---------------------------------------------------------------------------
    def upsert(self, points: Sequence[StoredPoint]) -> None:
        _, m = _models()
        for i in range(0, len(points), _BATCH):
            batch = [m.PointStruct(id=p.id, payload=p.payload, vector=_client_vectors(m, p.vectors))
                     for p in points[i:i + _BATCH]]
            self.client.upsert(self.collection, points=batch, wait=True)

    def _filter(self, doc_ids: Sequence[str] | None = None, kind: str | None = None):
        _, m = _models()
        must = []
        if doc_ids:
            must.append(m.FieldCondition(key="doc_id", match=m.MatchAny(any=list(doc_ids))))
        if kind is not None:
            must.append(m.FieldCondition(key="kind", match=m.MatchValue(value=kind)))
        return m.Filter(must=must) if must else None

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        _, m = _models()
        doc_ids = list(doc_ids)
        if not doc_ids or not self.exists():
            return
        for i in range(0, len(doc_ids), _BATCH):
            self.client.delete(self.collection, wait=True,
                               points_selector=m.FilterSelector(filter=self._filter(doc_ids[i:i + _BATCH])))

    def set_dense(self, vectors: dict[str, list[float]]) -> None:
        _, m = _models()
        items = list(vectors.items())
        for i in range(0, len(items), _BATCH):
            batch = [m.PointVectors(id=pid, vector={DENSE: [float(x) for x in v]}) for pid, v in items[i:i + _BATCH]]
            self.client.update_vectors(self.collection, points=batch, wait=True)

    def dense_vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        if not ids or not self.exists():
            return {}
        records = self.client.retrieve(self.collection, ids=list(ids), with_payload=False, with_vectors=[DENSE])
        return {str(r.id): list(r.vector[DENSE]) for r in records if isinstance(r.vector, dict) and DENSE in r.vector}

    def clear_dense(self) -> None:
        _, m = _models()
        if self.exists():
            self.client.delete_vectors(self.collection, vectors=[DENSE], wait=True,
                                       points=m.FilterSelector(filter=self._filter(kind="chunk")))

    # -- reading ---------------------------------------------------------------------------
    def query(self, queries: Sequence[VectorQuery], fields: Sequence[str] = HIT_FIELDS) -> list[list[ScoredPoint]]:
        _, m = _models()
        if not queries:
            return []
        requests = []
        for q in queries:
            if isinstance(q.vector, SparseVector):
                vec = m.SparseVector(indices=list(q.vector.indices), values=[float(x) for x in q.vector.values])
                params = None
            else:
                vec = [float(x) for x in q.vector]
                params = None if self._local else m.SearchParams(hnsw_ef=max(128, 2 * q.limit))
            requests.append(m.QueryRequest(query=vec, using=q.using, limit=q.limit, with_payload=list(fields),
                                           params=params))
        responses = self.client.query_batch_points(self.collection, requests=requests)
        return [[ScoredPoint(str(p.id), float(p.score), dict(p.payload or {})) for p in r.points] for r in responses]

    def retrieve(self, ids: Sequence[str], fields: Sequence[str] = HIT_FIELDS) -> list[ScoredPoint]:
        if not ids:
            return []
        records = self.client.retrieve(self.collection, ids=list(ids), with_payload=list(fields), with_vectors=False)
        return [ScoredPoint(str(r.id), 0.0, dict(r.payload or {})) for r in records]

    def count(self, doc_id: str | None = None, kind: str | None = "chunk") -> int:
        if not self.exists():
            return 0
        flt = self._filter([doc_id] if doc_id else None, kind)
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def scroll(self, with_vectors: bool = False) -> Iterator[StoredPoint]:
        if not self.exists():
            return
        offset = None
        while True:
            records, offset = self.client.scroll(self.collection, limit=_BATCH, offset=offset, with_payload=True,
                                                 with_vectors=with_vectors)
            for r in records:
                yield StoredPoint(str(r.id), _plain_vectors(r.vector) if with_vectors else {}, dict(r.payload or {}))
            if offset is None:
                break


def _client_vectors(m, vectors: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, v in vectors.items():
        if isinstance(v, SparseVector):
            out[name] = m.SparseVector(indices=list(v.indices), values=[float(x) for x in v.values])
        else:
            out[name] = [float(x) for x in v]
    return out


def _plain_vectors(vec: Any) -> dict[str, Any]:
    out = {}
    for name, v in (vec or {}).items() if isinstance(vec, dict) else ():
        out[name] = SparseVector(list(v.indices), [float(x) for x in v.values]) if hasattr(v, "indices") else list(v)
    return out

