"""A collection's manifest: its frozen settings and a journal of its documents (SQLite, WAL).

The journal is what makes ingest crash-safe. Before a document's points are touched its
row is marked ``pending`` (or ``deleting``) in one transaction; only after the store has
durably applied the change is it marked ``committed``. A run that finds a row not
``committed`` knows the store may hold a partial state for that document, deletes all of
its points and forgets the row — so after ``kill -9`` at any moment, running the same
command again ends with exactly the points a clean run gives.
"""
from __future__ import annotations

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
"""


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
        except sqlite3.DatabaseError as e:
            raise RagError(f"cannot open the collection manifest {self.path}: {e}") from None

    def close(self) -> None:
        self._db.close()

    # -- settings --------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def set_meta(self, values: dict[str, Any]) -> None:
        with self._db:
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
        with self._db:
            self._db.executemany(
                "INSERT INTO documents(doc_id, source, title, content_hash, n_chunks, state, updated_at) "
                "VALUES (?, ?, ?, ?, 0, 'pending', ?) ON CONFLICT(doc_id) DO UPDATE SET source=excluded.source, "
                "title=excluded.title, content_hash=excluded.content_hash, n_chunks=0, state='pending', "
                "updated_at=excluded.updated_at",
                [(d, s, t, h, now) for d, s, t, h in docs])

    def commit(self, counts: dict[str, int]) -> None:
        """Mark documents as fully written with their chunk counts."""
        now = _now()
        with self._db:
            self._db.executemany("UPDATE documents SET state='committed', n_chunks=?, updated_at=? WHERE doc_id=?",
                                 [(n, now, d) for d, n in counts.items()])

    def begin_delete(self, doc_ids: Iterable[str]) -> None:
        with self._db:
            self._db.executemany("UPDATE documents SET state='deleting', updated_at=? WHERE doc_id=?",
                                 [(_now(), d) for d in doc_ids])

    def forget(self, doc_ids: Iterable[str]) -> None:
        with self._db:
            self._db.executemany("DELETE FROM documents WHERE doc_id=?", [(d,) for d in doc_ids])

    def totals(self) -> tuple[int, int]:
        n, chunks = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(n_chunks), 0) FROM documents WHERE state='committed'").fetchone()
        return int(n), int(chunks)
