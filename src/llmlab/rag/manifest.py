"""A collection's manifest: its frozen settings and a journal of its documents (SQLite, WAL).

The journal is what makes ingest crash-safe. Before a batch of documents' points is
touched their rows are marked ``pending`` (or ``deleting``) in one transaction; only after
the store has durably applied the change are they marked ``committed`` — again one
transaction for the whole batch, so a batch is journalled all-or-nothing. A run that finds
a row not ``committed`` knows the store may hold a partial state for that document,
deletes all of its points and forgets the row — so after ``kill -9`` at any moment,
running the same command again ends with exactly the points a clean run gives.

The ``chunks`` table records, per committed chunk, the hash of the text the embedder
reads and whether its dense vector is in the store yet: the lexical phase of an ingest
commits chunks with ``dense=0``, the dense phase flips them to 1 batch by batch, so an
interrupted dense pass continues where it stopped, and a text already embedded (in this
collection, under this embedder) is never embedded again.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from .types import RagError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL,
    n_chunks INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('pending', 'committed', 'deleting')),
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS chunks (
    doc_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    dense INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (doc_id, idx)
);
CREATE INDEX IF NOT EXISTS chunks_text_hash ON chunks(text_hash, dense);
CREATE INDEX IF NOT EXISTS chunks_dense ON chunks(dense, doc_id, idx);
"""
#: the manifest layout (``PRAGMA user_version``); 0: before the ``chunks`` table existed
_LAYOUT = 2


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class DocumentRecord:
    doc_id: str
    source: str
    title: str
    content_hash: str
    n_chunks: int
    state: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "source": self.source, "title": self.title, "content_hash": self.content_hash,
                "chunks": self.n_chunks, "state": self.state, "updated_at": self.updated_at}


class Manifest:
    """Settings and document journal of one collection."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # a collection may be opened in one thread and used or closed in another (LangChain
            # runs retrievers in worker threads); calls on one collection come one at a time
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a committed journal entry must survive
            self._db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise RagError(f"cannot open the collection manifest {self.path}: {e}") from None

    @contextlib.contextmanager
    def _tx(self):
        """One explicit transaction (one fsync): every statement inside commits, or none does.

        The connection runs in autocommit mode (``isolation_level=None``), where ``with db:``
        opens no transaction and each statement would commit on its own.
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        if self._db.execute("PRAGMA user_version").fetchone()[0] >= _LAYOUT:
            return
        with self._tx() as db:
            # collections made before the two-phase ingest embedded every committed chunk
            rows = db.execute("SELECT doc_id, n_chunks FROM documents WHERE state='committed'").fetchall()
            db.executemany("INSERT OR IGNORE INTO chunks(doc_id, idx, text_hash, dense) VALUES (?, ?, '', 1)",
                           [(d, i) for d, n in rows for i in range(n)])
            db.execute(f"PRAGMA user_version={_LAYOUT}")

    def close(self) -> None:
        self._db.close()

    # -- settings --------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def set_meta(self, values: dict[str, Any]) -> None:
        with self._tx():
            self._db.executemany("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                                 [(k, json.dumps(v, ensure_ascii=False)) for k, v in values.items()])

    # -- documents -------------------------------------------------------------------------
    def get(self, doc_id: str) -> DocumentRecord | None:
        row = self._db.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return DocumentRecord(*row) if row else None

    def documents(self, state: str | None = "committed") -> list[DocumentRecord]:
        if state is None:
            rows = self._db.execute("SELECT * FROM documents ORDER BY doc_id").fetchall()
        else:
            rows = self._db.execute("SELECT * FROM documents WHERE state=? ORDER BY doc_id", (state,)).fetchall()
        return [DocumentRecord(*r) for r in rows]

    def unfinished(self) -> list[DocumentRecord]:
        """Documents a crashed run left half-written (or half-deleted)."""
        rows = self._db.execute("SELECT * FROM documents WHERE state != 'committed' ORDER BY doc_id").fetchall()
        return [DocumentRecord(*r) for r in rows]

    def begin(self, docs: Iterable[tuple[str, str, str, str]]) -> None:
        """Journal the intent to (re)write documents ``(doc_id, source, title, content_hash)``."""
        now = _now()
        with self._tx():
            self._db.executemany(
                "INSERT INTO documents(doc_id, source, title, content_hash, n_chunks, state, updated_at) "
                "VALUES (?, ?, ?, ?, 0, 'pending', ?) ON CONFLICT(doc_id) DO UPDATE SET source=excluded.source, "
                "title=excluded.title, content_hash=excluded.content_hash, n_chunks=0, state='pending', "
                "updated_at=excluded.updated_at",
                [(d, s, t, h, now) for d, s, t, h in docs])

    def commit(self, counts: dict[str, int], chunks: Iterable[tuple[str, int, str, bool]] = ()) -> None:
        """Mark documents as fully written with their chunk counts, in one transaction.

        ``chunks`` lists their chunks ``(doc_id, index, text_hash, has_dense_vector)``; the
        documents' earlier chunk rows are replaced.
        """
        now = _now()
        with self._tx() as db:
            db.executemany("UPDATE documents SET state='committed', n_chunks=?, updated_at=? WHERE doc_id=?",
                           [(n, now, d) for d, n in counts.items()])
            db.executemany("DELETE FROM chunks WHERE doc_id=?", [(d,) for d in counts])
            db.executemany("INSERT INTO chunks(doc_id, idx, text_hash, dense) VALUES (?, ?, ?, ?)",
                           [(d, i, h, int(bool(v))) for d, i, h, v in chunks])

    def begin_delete(self, doc_ids: Iterable[str]) -> None:
        with self._tx():
            self._db.executemany("UPDATE documents SET state='deleting', updated_at=? WHERE doc_id=?",
                                 [(_now(), d) for d in doc_ids])

    def forget(self, doc_ids: Iterable[str]) -> None:
        ids = [(d,) for d in doc_ids]
        with self._tx() as db:
            db.executemany("DELETE FROM documents WHERE doc_id=?", ids)
            db.executemany("DELETE FROM chunks WHERE doc_id=?", ids)

    # -- dense vectors -----------------------------------------------------------------------
    def dense_todo(self, limit: int) -> list[tuple[str, str, int, str]]:
        """Up to ``limit`` committed chunks without a dense vector: ``(doc_id, doc_hash, index, text_hash)``."""
        return self._db.execute(
            "SELECT c.doc_id, d.content_hash, c.idx, c.text_hash FROM chunks c JOIN documents d USING (doc_id) "
            "WHERE c.dense=0 AND d.state='committed' ORDER BY c.doc_id, c.idx LIMIT ?", (limit,)).fetchall()

    def dense_sources(self, text_hashes: Iterable[str]) -> dict[str, tuple[str, str, int]]:
        """For each text hash, a committed chunk with that text whose dense vector is stored."""
        out: dict[str, tuple[str, str, int]] = {}
        hashes = sorted({h for h in text_hashes if h})
        for i in range(0, len(hashes), 500):
            part = hashes[i:i + 500]
            rows = self._db.execute(
                "SELECT c.text_hash, c.doc_id, d.content_hash, c.idx FROM chunks c JOIN documents d USING (doc_id) "
                f"WHERE c.dense=1 AND d.state='committed' AND c.text_hash IN ({','.join('?' * len(part))})", part)
            for h, doc_id, doc_hash, idx in rows:
                out.setdefault(h, (doc_id, doc_hash, idx))
        return out

    def mark_dense(self, chunks: Iterable[tuple[str, int]]) -> None:
        """Record that these chunks' dense vectors are durably stored (one transaction)."""
        with self._tx() as db:
            db.executemany("UPDATE chunks SET dense=1 WHERE doc_id=? AND idx=?", list(chunks))

    def reset_dense(self, meta: dict[str, Any]) -> None:
        """Mark every chunk as needing a dense vector and update settings, in one transaction."""
        with self._tx() as db:
            db.execute("UPDATE chunks SET dense=0")
            db.executemany("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                           [(k, json.dumps(v, ensure_ascii=False)) for k, v in meta.items()])

    def any_dense(self) -> bool:
        return self._db.execute("SELECT 1 FROM chunks WHERE dense=1 LIMIT 1").fetchone() is not None

    def coverage(self) -> tuple[int, int]:
        """``(chunks with a dense vector, chunks)`` over committed documents."""
        done, total = self._db.execute(
            "SELECT COALESCE(SUM(c.dense), 0), COUNT(*) FROM chunks c JOIN documents d USING (doc_id) "
            "WHERE d.state='committed'").fetchone()
        return int(done), int(total)

    def totals(self) -> tuple[int, int]:
        n, chunks = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(n_chunks), 0) FROM documents WHERE state='committed'").fetchone()
        return int(n), int(chunks)
