"""The run ledger: every generation, recorded in SQLite under ``LLMLAB_HOME``.

WAL journaling and one transaction per record mean a process killed at any moment leaves
the database consistent: a run is either fully recorded or absent. Users can list, sum
and purge what was recorded (``llmlab logs``, ``llmlab usage``, ``llmlab logs purge``).
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError, LedgerError
from .migrations import migrate


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class RunRecord:
    """One recorded call (a generation, a chat turn, a task, an evaluation, …)."""

    kind: str
    model: str | None = None
    backend: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    output: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float | None = None
    cost_usd: float = 0.0
    session: str | None = None
    experiment: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "kind": self.kind,
            "model": self.model,
            "backend": self.backend,
            "params": self.params,
            "prompt": self.prompt,
            "messages": self.messages,
            "output": self.output,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            },
            "latency_s": self.latency_s,
            "cost_usd": self.cost_usd,
            "session": self.session,
            "experiment": self.experiment,
            "meta": self.meta,
        }


_COLUMNS = ("created_at", "kind", "model", "backend", "params", "prompt", "messages", "output", "prompt_tokens",
            "completion_tokens", "latency_s", "cost_usd", "session", "experiment", "meta")


def _parse_date(value: str) -> str:
    """Accept YYYY-MM-DD or a full ISO timestamp; return an ISO string comparable to created_at."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidParameterError(f"invalid date {value!r}; use YYYY-MM-DD or an ISO timestamp") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds")


class Ledger:
    """A SQLite run ledger. Safe to share between threads; each call is one transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=30000")
            migrate(self._db)
        except sqlite3.DatabaseError as e:
            raise LedgerError(f"cannot open the run ledger at {self.path}: {e}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing -------------------------------------------------------------------------
    def record(self, run: RunRecord) -> int:
        """Append one run; returns its id."""
        run.created_at = run.created_at or utcnow()
        values = (
            run.created_at, run.kind, run.model, run.backend, json.dumps(run.params, ensure_ascii=False, default=str),
            run.prompt, None if run.messages is None else json.dumps(run.messages, ensure_ascii=False),
            json.dumps(run.output, ensure_ascii=False), int(run.prompt_tokens), int(run.completion_tokens),
            run.latency_s, float(run.cost_usd), run.session, run.experiment,
            json.dumps(run.meta, ensure_ascii=False, default=str),
        )
        with self._lock, self._db:
            cur = self._db.execute(
                f"INSERT INTO runs({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", values
            )
            run.id = int(cur.lastrowid)
        return run.id

    # -- reading -------------------------------------------------------------------------
    def runs(self, limit: int = 20, *, kind: str | None = None, model: str | None = None, session: str | None = None,
             experiment: str | None = None, search: str | None = None) -> list[RunRecord]:
        """The newest runs first, optionally filtered."""
        where, args = [], []
        for col, val in (("kind", kind), ("model", model), ("session", session), ("experiment", experiment)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if search:
            where.append("(prompt LIKE ? OR messages LIKE ? OR output LIKE ?)")
            args += [f"%{search}%"] * 3
        sql = "SELECT id, " + ", ".join(_COLUMNS) + " FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [self._row(r) for r in rows]

    def get(self, run_id: int) -> RunRecord | None:
        with self._lock:
            r = self._db.execute("SELECT id, " + ", ".join(_COLUMNS) + " FROM runs WHERE id=?", (run_id,)).fetchone()
        return self._row(r) if r else None

    @staticmethod
    def _row(r: tuple) -> RunRecord:
        d = dict(zip(("id",) + _COLUMNS, r))
        for k in ("params", "meta"):
            d[k] = json.loads(d[k]) if d[k] else {}
        d["messages"] = json.loads(d["messages"]) if d["messages"] else None
        d["output"] = json.loads(d["output"]) if d["output"] else []
        return RunRecord(**d)

    def usage(self, *, since: str | None = None) -> list[dict[str, Any]]:
        """Tokens, calls and cost per model and per day (UTC)."""
        sql = (
            "SELECT substr(created_at, 1, 10) AS day, model, backend, COUNT(*), SUM(prompt_tokens), "
            "SUM(completion_tokens), SUM(cost_usd) FROM runs"
        )
        args: list[Any] = []
        if since:
            sql += " WHERE created_at >= ?"
            args.append(_parse_date(since))
        sql += " GROUP BY day, model, backend ORDER BY day, model"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [
            {"day": day, "model": model, "backend": backend, "calls": n, "prompt_tokens": pt or 0,
             "completion_tokens": ct or 0, "total_tokens": (pt or 0) + (ct or 0), "cost_usd": round(cost or 0.0, 6)}
            for day, model, backend, n, pt, ct, cost in rows
        ]

    def purge(self, *, before: str | None = None) -> int:
        """Delete recorded runs (all, or those created before ``before``) and chat history; returns runs deleted."""
        with self._lock, self._db:
            if before:
                cutoff = _parse_date(before)
                n = self._db.execute("DELETE FROM runs WHERE created_at < ?", (cutoff,)).rowcount
                self._db.execute("DELETE FROM chat_messages WHERE created_at < ?", (cutoff,))
            else:
                n = self._db.execute("DELETE FROM runs").rowcount
                self._db.execute("DELETE FROM chat_messages")
                self._db.execute("DELETE FROM chat_sessions")
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("VACUUM")  # deleted text must not linger in free pages
        return n

    # -- chat sessions -------------------------------------------------------------------
    def session(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT name, model, system, created_at, updated_at FROM chat_sessions WHERE name=?",
                                   (name,)).fetchone()
            if not row:
                return None
            msgs = self._db.execute("SELECT role, content FROM chat_messages WHERE session=? ORDER BY id",
                                    (name,)).fetchall()
        return {"name": row[0], "model": row[1], "system": row[2], "created_at": row[3], "updated_at": row[4],
                "messages": [{"role": r, "content": c} for r, c in msgs]}

    def sessions(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT s.name, s.model, s.updated_at, COUNT(m.id) FROM chat_sessions s "
                "LEFT JOIN chat_messages m ON m.session = s.name GROUP BY s.name ORDER BY s.updated_at DESC"
            ).fetchall()
        return [{"name": n, "model": m, "updated_at": u, "messages": c} for n, m, u, c in rows]

    def append_turn(self, name: str, model: str, system: str | None, messages: list[dict[str, str]],
                    run_id: int | None = None) -> None:
        """Append messages to a session (creating it), in one transaction."""
        now = utcnow()
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO chat_sessions(name, model, system, created_at, updated_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET model=excluded.model, updated_at=excluded.updated_at, "
                "system=COALESCE(excluded.system, chat_sessions.system)",
                (name, model, system, now, now),
            )
            self._db.executemany(
                "INSERT INTO chat_messages(session, role, content, created_at, run_id) VALUES (?,?,?,?,?)",
                [(name, m["role"], m["content"], now, run_id) for m in messages],
            )

    def integrity_ok(self) -> bool:
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
