"""Named, append-only migrations of the run ledger's SQLite schema.

Never edit or reorder a migration once released: add a new one at the end. Each runs in
its own transaction together with the row that records it, so a killed process leaves the
schema either before or after a migration, never half-way.
"""
from __future__ import annotations

import sqlite3
from typing import Callable

Migration = tuple[str, Callable[[sqlite3.Connection], None]]


def _m001_runs(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at TEXT NOT NULL,          -- UTC ISO-8601
            kind TEXT NOT NULL,                -- generate | chat | prompt | task | rag | eval | finetune | ...
            model TEXT,
            backend TEXT,
            params TEXT,                       -- JSON
            prompt TEXT,
            messages TEXT,                     -- JSON list of {role, content}
            output TEXT,                       -- JSON list of generated texts
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            latency_s REAL,
            cost_usd REAL NOT NULL DEFAULT 0,
            session TEXT,
            experiment TEXT,
            meta TEXT                          -- JSON
        )
        """
    )
    db.execute("CREATE INDEX runs_created ON runs(created_at)")
    db.execute("CREATE INDEX runs_session ON runs(session)")
    db.execute("CREATE INDEX runs_experiment ON runs(experiment)")


def _m002_sessions(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE chat_sessions (
            name TEXT PRIMARY KEY,
            model TEXT,
            system TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE chat_messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session TEXT NOT NULL REFERENCES chat_sessions(name) ON DELETE CASCADE,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at TEXT NOT NULL,
            run_id INTEGER
        )
        """
    )
    db.execute("CREATE INDEX chat_messages_session ON chat_messages(session, id)")


def _m003_owner(db: sqlite3.Connection) -> None:
    # who made a record: a short id derived from the server key's hash (never the key), NULL for
    # local use (CLI, Python API, a server without keys); a `user` key reads only its own rows
    db.execute("ALTER TABLE runs ADD COLUMN owner TEXT")
    db.execute("ALTER TABLE chat_sessions ADD COLUMN owner TEXT")
    db.execute("CREATE INDEX runs_owner ON runs(owner, id)")


MIGRATIONS: list[Migration] = [
    ("m001_runs", _m001_runs),
    ("m002_sessions", _m002_sessions),
    ("m003_owner", _m003_owner),
]


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply pending migrations in order; returns the names applied."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {r[0] for r in db.execute("SELECT name FROM _migrations")}
    names = [n for n, _ in MIGRATIONS]
    if len(set(names)) != len(names):  # pragma: no cover - a programming error
        raise RuntimeError("duplicate migration names")
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with db:  # one transaction: the schema change and its record
            db.execute("BEGIN IMMEDIATE")
            if db.execute("SELECT 1 FROM _migrations WHERE name=?", (name,)).fetchone():
                continue  # another process applied it meanwhile
            fn(db)
            db.execute("INSERT INTO _migrations(name, applied_at) VALUES (?, datetime('now'))", (name,))
        applied.append(name)
    return applied
