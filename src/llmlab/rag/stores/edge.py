"""Qdrant Edge (``qdrant-edge-py``): the Qdrant engine inside this process — the default store.

One shard directory per collection. Writes go through Qdrant's write-ahead log, so a
process killed mid-write replays cleanly on the next load (llmlab's ingest journal
handles the rest). A shard is locked by the process that opened it: a second process
gets a clear "busy" error instead of a corrupt index. Inside one process every store
object of a shard shares one loaded shard (calls serialised by a lock), so the server
can search a collection while its own background ingest writes to it.
"""
from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from ...errors import MissingDependencyError
from ..types import CollectionBusyError, RagError, ScoredPoint, SparseVector, StoredPoint, VectorQuery
from . import DENSE, HIT_FIELDS, SPARSE_VECTORS

log = logging.getLogger(__name__)

_BATCH = 256


class _SharedShard:
    """One loaded shard shared by the store objects of a process; every call holds its lock."""

    def __init__(self, shard: Any):
        self._shard = shard
        self.lock = threading.RLock()
        self.users = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._shard, name)
        if not callable(attr):
            return attr

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return attr(*args, **kwargs)

        return locked


#: resolved shard path -> the shard loaded in this process (the shard's file lock is per process)
_LOADED: dict[str, _SharedShard] = {}
_LOADED_LOCK = threading.Lock()


def _qe():
    try:
        import qdrant_edge
    except ImportError:
        raise MissingDependencyError("qdrant-edge-py", purpose="the embedded vector store (--store edge)") from None
    return qdrant_edge


class EdgeStore:
    name = "edge"

    def __init__(self, collection: str, *, path: Path, url: str | None = None, hnsw_m: int = 16,
                 ef_construct: int = 100, search_threads: int | None = None, **_options: Any):
        self.collection = collection
        self.path = Path(path)
        self.hnsw_m, self.ef_construct = hnsw_m, ef_construct
        self.search_threads = search_threads
        self._shard = None
        if self.exists():
            self._open()

    # -- lifecycle -------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.path / "edge_config.json").is_file()

    def _open(self) -> None:
        key = str(self.path.resolve())
        with _LOADED_LOCK:
            shared = _LOADED.get(key)
            if shared is None:
                shared = _LOADED[key] = _SharedShard(self._load())
            shared.users += 1
        self._shard = shared

    def _load(self) -> Any:
        qe = _qe()
        try:
            return qe.EdgeShard.load(str(self.path))
        except Exception as e:  # noqa: BLE001 - the binding raises plain Exception
            if "WouldBlock" in str(e):
                raise CollectionBusyError(f"collection {self.collection!r} is busy: another llmlab process is "
                                          "writing it (an ingest or embedding pass); try again when it finishes") from None
            raise RagError(f"cannot open collection {self.collection!r} at {self.path}: {e}") from None

    def ensure(self, dim: int) -> None:
        if self._shard is not None:
            return
        qe = _qe()
        config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={name: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf) for name in SPARSE_VECTORS},
            hnsw_config=qe.HnswIndexConfig(m=self.hnsw_m, ef_construct=self.ef_construct, full_scan_threshold=10000),
            max_search_threads=self.search_threads,
        )
        # create beside the final path and rename, so a crash never leaves a half-made shard there
        tmp = self.path.with_name(self.path.name + ".creating")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        shard = qe.EdgeShard.create(str(tmp), config)
        for key in ("doc_id", "kind"):
            shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword))
        shard.flush()
        shard.close()
        tmp.rename(self.path)
        self._open()

    @property
    def shard(self):
        if self._shard is None:
            raise RagError(f"collection {self.collection!r} does not exist yet; ingest documents into it first")
        return self._shard

    def close(self) -> None:
        if self._shard is None:
            return
        with _LOADED_LOCK:
            self._shard.users -= 1
            if self._shard.users <= 0:
                _LOADED.pop(str(self.path.resolve()), None)
                self._shard.close()
        self._shard = None

    def drop(self) -> None:
        self.close()
        with _LOADED_LOCK:  # other users in this process keep their handle; a new open loads afresh
            _LOADED.pop(str(self.path.resolve()), None)
        shutil.rmtree(self.path, ignore_errors=True)

    def flush(self) -> None:
        self.shard.flush()

    def optimize(self) -> None:
        self.shard.optimize()

    # -- writing ---------------------------------------------------------------------------
    def upsert(self, points: Sequence[StoredPoint]) -> None:
        qe = _qe()
        for i in range(0, len(points), _BATCH):
            batch = [qe.Point(id=p.id, payload=p.payload, vector=_edge_vectors(qe, p.vectors))
                     for p in points[i:i + _BATCH]]
            self.shard.update(qe.UpdateOperation.upsert_points(batch))

    def _filter(self, doc_ids: Sequence[str] | None = None, kind: str | None = None):
        qe = _qe()
        must = []
        if doc_ids:
            match = qe.MatchValue(doc_ids[0]) if len(doc_ids) == 1 else qe.MatchAny(list(doc_ids))
            must.append(qe.FieldCondition(key="doc_id", match=match))
        if kind is not None:
            must.append(qe.FieldCondition(key="kind", match=qe.MatchValue(kind)))
        return qe.Filter(must=must) if must else None

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        qe = _qe()
        doc_ids = list(doc_ids)
        for i in range(0, len(doc_ids), _BATCH):
            self.shard.update(qe.UpdateOperation.delete_points_by_filter(self._filter(doc_ids[i:i + _BATCH])))

    def set_dense(self, vectors: dict[str, list[float]]) -> None:
        qe = _qe()
        items = list(vectors.items())
        for i in range(0, len(items), _BATCH):
            batch = [qe.PointVectors(id=pid, vector={DENSE: [float(x) for x in v]}) for pid, v in items[i:i + _BATCH]]
            self.shard.update(qe.UpdateOperation.update_vectors(batch))

    def dense_vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        if not ids or self._shard is None:
            return {}
        records = self.shard.retrieve(list(ids), with_payload=False, with_vector=[DENSE])
        return {str(r.id): list(r.vector[DENSE]) for r in records if r.vector and DENSE in r.vector}

    def clear_dense(self) -> None:
        if self._shard is not None:
            self.shard.update(_qe().UpdateOperation.delete_vectors_by_filter(self._filter(kind="chunk"), [DENSE]))

    # -- reading ---------------------------------------------------------------------------
    def query(self, queries: Sequence[VectorQuery], fields: Sequence[str] = HIT_FIELDS) -> list[list[ScoredPoint]]:
        qe = _qe()
        requests = []
        for q in queries:
            if isinstance(q.vector, SparseVector):
                vec = qe.SparseVector(indices=list(q.vector.indices), values=[float(x) for x in q.vector.values])
                params = None
            else:
                vec = [float(x) for x in q.vector]
                params = qe.SearchParams(hnsw_ef=max(128, 2 * q.limit))
            requests.append(qe.QueryRequest(limit=q.limit, query=qe.Query.Nearest(vec, using=q.using),
                                            with_payload=list(fields), params=params))
        if not requests:
            return []
        results = self.shard.query_batch(qe.QueryBatchRequest(requests))
        return [[ScoredPoint(str(p.id), float(p.score), dict(p.payload or {})) for p in points] for points in results]

    def retrieve(self, ids: Sequence[str], fields: Sequence[str] = HIT_FIELDS) -> list[ScoredPoint]:
        if not ids:
            return []
        records = self.shard.retrieve(list(ids), with_payload=list(fields), with_vector=False)
        return [ScoredPoint(str(r.id), 0.0, dict(r.payload or {})) for r in records]

    def count(self, doc_id: str | None = None, kind: str | None = "chunk") -> int:
        if self._shard is None:
            return 0
        qe = _qe()
        return int(self.shard.count(qe.CountRequest(exact=True, filter=self._filter([doc_id] if doc_id else None, kind))))

    def scroll(self, with_vectors: bool = False) -> Iterator[StoredPoint]:
        if self._shard is None:
            return
        qe = _qe()
        offset = None
        while True:
            records, offset = self.shard.scroll(qe.ScrollRequest(offset=offset, limit=_BATCH, with_payload=True,
                                                                 with_vector=with_vectors))
            for r in records:
                yield StoredPoint(str(r.id), _plain_vectors(r.vector) if with_vectors else {}, dict(r.payload or {}))
            if offset is None:
                break


def _edge_vectors(qe, vectors: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, v in vectors.items():
        if isinstance(v, SparseVector):
            out[name] = qe.SparseVector(indices=list(v.indices), values=[float(x) for x in v.values])
        else:
            out[name] = [float(x) for x in v]
    return out


def _plain_vectors(vec: Any) -> dict[str, Any]:
    out = {}
    for name, v in (vec or {}).items():
        out[name] = SparseVector(list(v.indices), [float(x) for x in v.values]) if hasattr(v, "indices") else list(v)
    return out
