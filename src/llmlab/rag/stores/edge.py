"""Qdrant Edge (``qdrant-edge-py``): the Qdrant engine inside this process — the default store.

One shard directory per collection. Writes go through Qdrant's write-ahead log, so a
process killed mid-write replays cleanly on the next load (llmlab's ingest journal
handles the rest). A shard is locked by the process that opened it: a second process
gets a clear "in use" error instead of a corrupt index.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Iterator, Sequence

from ...errors import MissingDependencyError
from ..types import Chunk, Hit, RagError, SparseVector, StoredChunk
from . import DENSE, HIT_FIELDS, SPARSE

log = logging.getLogger(__name__)

_BATCH = 256


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
        qe = _qe()
        try:
            self._shard = qe.EdgeShard.load(str(self.path))
        except Exception as e:  # noqa: BLE001 - the binding raises plain Exception
            if "WouldBlock" in str(e):
                raise RagError(f"collection {self.collection!r} is in use by another llmlab process "
                               "(an ingest?); wait for it to finish and try again") from None
            raise RagError(f"cannot open collection {self.collection!r} at {self.path}: {e}") from None

    def ensure(self, dim: int) -> None:
        if self._shard is not None:
            return
        qe = _qe()
        config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(m=self.hnsw_m, ef_construct=self.ef_construct, full_scan_threshold=10000),
            max_search_threads=self.search_threads,
        )
        # create beside the final path and rename, so a crash never leaves a half-made shard there
        tmp = self.path.with_name(self.path.name + ".creating")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        shard = qe.EdgeShard.create(str(tmp), config)
        shard.update(qe.UpdateOperation.create_field_index("doc_id", qe.PayloadSchemaType.Keyword))
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
        if self._shard is not None:
            self._shard.close()
            self._shard = None

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def flush(self) -> None:
        self.shard.flush()

    def optimize(self) -> None:
        self.shard.optimize()

    # -- writing ---------------------------------------------------------------------------
    def upsert(self, points: Sequence[StoredChunk]) -> None:
        qe = _qe()
        for i in range(0, len(points), _BATCH):
            batch = [qe.Point(id=p.id, payload=p.payload, vector={
                DENSE: [float(x) for x in p.dense],
                SPARSE: qe.SparseVector(indices=list(p.sparse.indices), values=list(p.sparse.values))})
                for p in points[i:i + _BATCH]]
            self.shard.update(qe.UpdateOperation.upsert_points(batch))

    def _doc_filter(self, doc_ids: Sequence[str]):
        qe = _qe()
        match = qe.MatchValue(doc_ids[0]) if len(doc_ids) == 1 else qe.MatchAny(list(doc_ids))
        return qe.Filter(must=[qe.FieldCondition(key="doc_id", match=match)])

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        qe = _qe()
        doc_ids = list(doc_ids)
        for i in range(0, len(doc_ids), _BATCH):
            self.shard.update(qe.UpdateOperation.delete_points_by_filter(self._doc_filter(doc_ids[i:i + _BATCH])))

    # -- reading ---------------------------------------------------------------------------
    def search(self, dense, sparse: SparseVector | None, limit: int) -> tuple[list[Hit], list[Hit]]:
        qe = _qe()
        requests, kinds = [], []
        if dense is not None:
            requests.append(qe.QueryRequest(limit=limit, query=qe.Query.Nearest([float(x) for x in dense], using=DENSE),
                                            with_payload=HIT_FIELDS, params=qe.SearchParams(hnsw_ef=max(64, 2 * limit))))
            kinds.append("dense")
        if sparse is not None and sparse.indices:
            requests.append(qe.QueryRequest(limit=limit, with_payload=HIT_FIELDS, query=qe.Query.Nearest(
                qe.SparseVector(indices=list(sparse.indices), values=list(sparse.values)), using=SPARSE)))
            kinds.append("bm25")
        results = {"dense": [], "bm25": []}
        if requests:
            for kind, points in zip(kinds, self.shard.query_batch(qe.QueryBatchRequest(requests))):
                results[kind] = [Hit(id=str(p.id), score=float(p.score), chunk=Chunk.from_payload(p.payload))
                                 for p in points]
        return results["dense"], results["bm25"]

    def count(self, doc_id: str | None = None) -> int:
        if self._shard is None:
            return 0
        qe = _qe()
        flt = self._doc_filter([doc_id]) if doc_id is not None else None
        return int(self.shard.count(qe.CountRequest(exact=True, filter=flt)))

    def scroll(self, with_vectors: bool = False) -> Iterator[tuple[str, dict[str, Any], Any]]:
        if self._shard is None:
            return
        qe = _qe()
        offset = None
        while True:
            records, offset = self.shard.scroll(qe.ScrollRequest(offset=offset, limit=_BATCH, with_payload=True,
                                                                 with_vector=with_vectors))
            for r in records:
                yield str(r.id), dict(r.payload or {}), (_plain_vectors(r.vector) if with_vectors else None)
            if offset is None:
                break


def _plain_vectors(vec: Any) -> dict[str, Any]:
    out = {}
    for name, v in (vec or {}).items():
        out[name] = SparseVector(list(v.indices), [float(x) for x in v.values]) if hasattr(v, "indices") else list(v)
    return out
