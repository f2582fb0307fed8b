"""The run ledger: every generation, recorded in SQLite under ``LLMLAB_HOME``.

WAL journaling and one transaction per record mean a process killed at any moment leaves
the database consistent: a run is either fully recorded or absent. Users can list, sum
and purge what was recorded (``llmlab logs``, ``llmlab usage``, ``llmlab logs purge``).

A write that fails — the disk is full, the file is read-only — raises :class:`LedgerError`
naming the ledger's path and the reason; SQLite rolls the transaction back, so the records
already there stay intact and the next write after space is freed records again. Callers that
record a generation catch it and warn (the answer is never lost to a broken ledger).

Private by default: prompts, messages, outputs and chat history are stored with personal
data masked by typed placeholders (``[PHONE_1]``) unless the lab's settings say
``ledger_raw_text = true``. Each record may carry an ``owner`` — the id of the server key
that made it (:func:`owned_by`), so a ``user`` key reads only its own records.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from ..diskspace import disk_full
from ..errors import InvalidParameterError, LedgerDiskFullError, LedgerError
from ..registry import Registry
from .migrations import migrate

#: the owner of records written in this context (a server sets it per request; None = local use)
OWNER: contextvars.ContextVar[str | None] = contextvars.ContextVar("llmlab_ledger_owner", default=None)
#: other places an owner can come from when :data:`OWNER` is unset (the web UI registers one that
#: reads the signed-in key of the event being handled): ``() -> str | None``
OWNER_SOURCES: Registry[Callable[[], "str | None"]] = Registry("ledger owner source")


@contextlib.contextmanager
def owned_by(owner: str | None) -> Iterator[None]:
    """Records written inside the block belong to ``owner``."""
    token = OWNER.set(owner)
    try:
        yield
    finally:
        OWNER.reset(token)


def current_owner() -> str | None:
    """The owner for a record written now: :data:`OWNER`, else the first source that knows one."""
    owner = OWNER.get()
    if owner is not None:
        return owner
    for name in OWNER_SOURCES:
        owner = OWNER_SOURCES.get(name)()
        if owner is not None:
            return owner
    return None


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
    owner: str | None = None  # the server key id that made it (None: local use)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.owner,
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
            "completion_tokens", "latency_s", "cost_usd", "session", "experiment", "meta", "owner")


def _parse_date(value: str) -> str:
    """Accept YYYY-MM-DD or a full ISO timestamp; return an ISO string comparable to created_at."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidParameterError(f"invalid date {value!r}; use YYYY-MM-DD or an ISO timestamp") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _masked(run: RunRecord) -> RunRecord:
    """``run`` with personal data in its texts replaced by typed placeholders (numbered per record)."""
    from ..guard.pii import Masker

    masker = Masker()

    def deep(v: Any) -> Any:  # meta and params may carry inputs too (a grid cell's, an evaluation's items)
        if isinstance(v, str):
            return masker.mask(v)
        if isinstance(v, dict):
            return {k: deep(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [deep(x) for x in v]
        return v

    run = dataclasses.replace(
        run,
        prompt=None if run.prompt is None else masker.mask(run.prompt),
        messages=None if run.messages is None else [{**m, "content": masker.mask(m["content"])} for m in run.messages],
        output=[masker.mask(o) for o in run.output],
        params=deep(run.params),
        meta=deep(run.meta),
    )
    if masker.mapping:
        run.meta = {**run.meta, "pii_masked": sorted({ph.strip("[]").rsplit("_", 1)[0].lower()
                                                      for ph in masker.mapping})}
    return run


class Ledger:
    """A SQLite run ledger. Safe to share between threads; each call is one transaction.

    Texts are stored with personal data masked unless ``raw_text=True`` (the lab's
    ``ledger_raw_text`` setting; see :meth:`for_settings`).
    """

    def __init__(self, path: str | Path, *, raw_text: bool = False):
        self.raw_text = raw_text
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=30000")
            migrate(self._db)
        except (sqlite3.DatabaseError, OSError) as e:
            if getattr(self, "_db", None) is not None:
                self._db.close()
            if self._disk_full(e):
                raise LedgerDiskFullError(f"cannot open the run ledger at {self.path}: disk full ({e}); free some "
                                          "space and try again") from e
            raise LedgerError(f"cannot open the run ledger at {self.path}: {e}") from e

    @classmethod
    def for_settings(cls, settings: Any) -> "Ledger":
        """The lab's ledger as its settings configure it (path and whether texts are kept raw)."""
        return cls(settings.ledger_path, raw_text=settings.ledger_raw_text)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One explicit transaction (the connection autocommits, so ``with self._db`` alone would not
        group statements): committed at the end, rolled back if anything in it fails."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            yield

    def _write_failed(self, e: BaseException, what: str) -> LedgerError:
        """The error for a write that did not happen, naming the file and the reason (rolled back: nothing is half-written)."""
        if self._disk_full(e):
            return LedgerDiskFullError(f"could not {what} in the run ledger at {self.path}: disk full ({e}); the "
                                       "records already there are intact — free some space and the next run is "
                                       "recorded again")
        return LedgerError(f"could not {what} in the run ledger at {self.path}: {e}")

    def _disk_full(self, e: BaseException) -> bool:
        # SQLite reports a full disk as SQLITE_FULL when a page cannot be written, but as a plain
        # "disk I/O error" when it cannot grow its shared-memory index: then ask the filesystem
        return disk_full(e, self.path, failed_writes=(sqlite3.OperationalError,))

    def _mask(self, text: str | None) -> str | None:
        if text is None or self.raw_text:
            return text
        from ..guard.pii import Masker

        return Masker().mask(text)

    # -- writing -------------------------------------------------------------------------
    def record(self, run: RunRecord) -> int:
        """Append one run; returns its id."""
        run.created_at = run.created_at or utcnow()
        if run.owner is None:
            run.owner = current_owner()
        stored = run if self.raw_text else _masked(run)
        run.meta = stored.meta
        values = (
            run.created_at, run.kind, run.model, run.backend, json.dumps(stored.params, ensure_ascii=False, default=str),
            stored.prompt, None if stored.messages is None else json.dumps(stored.messages, ensure_ascii=False),
            json.dumps(stored.output, ensure_ascii=False), int(run.prompt_tokens), int(run.completion_tokens),
            run.latency_s, float(run.cost_usd), run.session, run.experiment,
            json.dumps(stored.meta, ensure_ascii=False, default=str), run.owner,
        )
        try:
            with self._lock, self._transaction():
                cur = self._db.execute(
                    f"INSERT INTO runs({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", values
                )
                run.id = int(cur.lastrowid)
        except (sqlite3.Error, OSError) as e:
            raise self._write_failed(e, "record the run") from e
        return run.id

    # -- reading -------------------------------------------------------------------------
    def runs(self, limit: int = 20, *, kind: str | None = None, model: str | None = None, session: str | None = None,
             experiment: str | None = None, search: str | None = None, owner: str | None = None) -> list[RunRecord]:
        """The newest runs first, optionally filtered (``owner``: only that key's records)."""
        where, args = [], []
        for col, val in (("kind", kind), ("model", model), ("session", session), ("experiment", experiment),
                         ("owner", owner)):
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

    def usage(self, *, since: str | None = None, owner: str | None = None) -> list[dict[str, Any]]:
        """Tokens, calls and cost per model and per day (UTC); ``owner``: only that key's records."""
        sql = (
            "SELECT substr(created_at, 1, 10) AS day, model, backend, COUNT(*), SUM(prompt_tokens), "
            "SUM(completion_tokens), SUM(cost_usd) FROM runs"
        )
        where: list[str] = []
        args: list[Any] = []
        if since:
            where.append("created_at >= ?")
            args.append(_parse_date(since))
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " GROUP BY day, model, backend ORDER BY day, model"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [
            {"day": day, "model": model, "backend": backend, "calls": n, "prompt_tokens": pt or 0,
             "completion_tokens": ct or 0, "total_tokens": (pt or 0) + (ct or 0), "cost_usd": round(cost or 0.0, 6)}
            for day, model, backend, n, pt, ct, cost in rows
        ]

    def purge(self, *, before: str | None = None, owner: str | None = None) -> int:
        """Delete recorded runs (all, or those created before ``before``; ``owner``: only that key's) and
        chat history, then vacuum so the deleted text is gone from the file; returns runs deleted."""
        cond, args = [], []
        if before:
            cond.append("created_at < ?")
            args.append(_parse_date(before))
        try:
            n = self._purge(cond, args, before=before, owner=owner)
        except (sqlite3.Error, OSError) as e:
            raise self._write_failed(e, "purge records") from e
        self._vacuum(n)
        return n

    def _purge(self, cond: list[str], args: list[Any], *, before: str | None, owner: str | None) -> int:
        with self._lock, self._transaction():
            runs_where = " AND ".join(cond + (["owner = ?"] if owner is not None else []))
            run_args = args + ([owner] if owner is not None else [])
            n = self._db.execute("DELETE FROM runs" + (f" WHERE {runs_where}" if runs_where else ""), run_args).rowcount
            msg_cond = list(cond)
            msg_args = list(args)
            if owner is not None:
                msg_cond.append("session IN (SELECT name FROM chat_sessions WHERE owner = ?)")
                msg_args.append(owner)
            self._db.execute("DELETE FROM chat_messages" + (f" WHERE {' AND '.join(msg_cond)}" if msg_cond else ""),
                             msg_args)
            if not before:
                if owner is None:
                    self._db.execute("DELETE FROM chat_sessions")
                else:
                    self._db.execute("DELETE FROM chat_sessions WHERE owner = ?", (owner,))
        return n

    def _vacuum(self, deleted: int) -> None:
        """Rewrite the file so deleted text does not linger in free pages (needs room for a copy)."""
        try:
            with self._lock:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.execute("VACUUM")
        except (sqlite3.Error, OSError) as e:
            full = self._disk_full(e)
            reason, error = (f"disk full ({e})", LedgerDiskFullError) if full else (str(e), LedgerError)
            raise error(f"deleted {deleted} records from the run ledger at {self.path} but could not compact the "
                        f"file: {reason}; deleted text may remain in its free pages until the purge is run again "
                        "with free space (about the ledger's size)") from e

    # -- chat sessions -------------------------------------------------------------------
    def session(self, name: str, *, owner: str | None = None) -> dict[str, Any] | None:
        """A chat session and its messages (``owner``: None unless that key owns it)."""
        with self._lock:
            row = self._db.execute("SELECT name, model, system, created_at, updated_at, owner FROM chat_sessions "
                                   "WHERE name=?", (name,)).fetchone()
            if not row or (owner is not None and row[5] != owner):
                return None
            msgs = self._db.execute("SELECT role, content FROM chat_messages WHERE session=? ORDER BY id",
                                    (name,)).fetchall()
        return {"name": row[0], "model": row[1], "system": row[2], "created_at": row[3], "updated_at": row[4],
                "messages": [{"role": r, "content": c} for r, c in msgs]}

    def sessions(self, *, owner: str | None = None) -> list[dict[str, Any]]:
        """Chat sessions, most recent first (``owner``: only that key's)."""
        where, args = ("WHERE s.owner = ? ", [owner]) if owner is not None else ("", [])
        with self._lock:
            rows = self._db.execute(
                "SELECT s.name, s.model, s.updated_at, COUNT(m.id) FROM chat_sessions s "
                f"LEFT JOIN chat_messages m ON m.session = s.name {where}GROUP BY s.name ORDER BY s.updated_at DESC",
                args,
            ).fetchall()
        return [{"name": n, "model": m, "updated_at": u, "messages": c} for n, m, u, c in rows]

    def append_turn(self, name: str, model: str, system: str | None, messages: list[dict[str, str]],
                    run_id: int | None = None) -> None:
        """Append messages to a session (creating it), in one transaction (texts masked unless raw_text)."""
        now = utcnow()
        owner = current_owner()
        try:
            self._append_turn(name, model, system, messages, run_id, now, owner)
        except (sqlite3.Error, OSError) as e:
            raise self._write_failed(e, f"save chat session {name!r}") from e

    def _append_turn(self, name: str, model: str, system: str | None, messages: list[dict[str, str]],
                     run_id: int | None, now: str, owner: str | None) -> None:
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO chat_sessions(name, model, system, created_at, updated_at, owner) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET model=excluded.model, updated_at=excluded.updated_at, "
                "system=COALESCE(excluded.system, chat_sessions.system)",
                (name, model, self._mask(system), now, now, owner),
            )
            self._db.executemany(
                "INSERT INTO chat_messages(session, role, content, created_at, run_id) VALUES (?,?,?,?,?)",
                [(name, m["role"], self._mask(m["content"]), now, run_id) for m in messages],
            )

    def integrity_ok(self) -> bool:
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
