"""Cost guard: a daily spending limit per API key for paid API backends.

Spending is kept in a small SQLite file (one row per key and UTC day), so a restart does
not reset it. A request is checked before it is sent; its cost (from the price table)
is added when it finishes. Requests already running when the limit is crossed finish —
the next one is refused with :class:`BudgetExceededError`, which says when it resets.
"""
from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

from ..errors import LLMLabError


class BudgetExceededError(LLMLabError):
    code = "budget_exceeded"


def utc_day() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


class CostGuard:
    """``daily_usd`` per key per UTC day (``None``: no limit); keys are identified by a hash id."""

    def __init__(self, path: str | Path, daily_usd: float | None):
        if daily_usd is not None and daily_usd < 0:
            raise ValueError("daily_usd must be ≥ 0")
        self.daily_usd = daily_usd
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        """Opened on first use: a server without a budget never creates the file."""
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS spend (key_id TEXT NOT NULL, day TEXT NOT NULL, "
                               "usd REAL NOT NULL DEFAULT 0, PRIMARY KEY (key_id, day))")
        return self._conn

    def spent(self, key_id: str, day: str | None = None) -> float:
        with self._lock:
            row = self._db.execute("SELECT usd FROM spend WHERE key_id=? AND day=?", (key_id, day or utc_day())).fetchone()
        return float(row[0]) if row else 0.0

    def check(self, key_id: str) -> None:
        """Raise :class:`BudgetExceededError` when ``key_id`` has used up today's budget."""
        if self.daily_usd is None:
            return
        spent = self.spent(key_id)
        if spent >= self.daily_usd:
            raise BudgetExceededError(
                f"the daily budget of ${self.daily_usd:.2f} for this API key is used up (${spent:.4f} spent "
                f"today, UTC); it resets at 00:00 UTC. Use a local model, or ask the operator to raise the budget")

    def charge(self, key_id: str, usd: float) -> None:
        if usd <= 0 or self.daily_usd is None:
            return
        with self._lock:
            self._db.execute("INSERT INTO spend(key_id, day, usd) VALUES (?,?,?) "
                             "ON CONFLICT(key_id, day) DO UPDATE SET usd = usd + excluded.usd",
                             (key_id, utc_day(), float(usd)))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
