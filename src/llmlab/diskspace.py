"""Free space, and whether an error means the disk is full: one answer for every store.

The ledger (SQLite), fine-tuning checkpoints (torch, safetensors), RAG collections (Qdrant
Edge, SQLite) and model downloads all need to tell a full disk from other failures, and the
libraries say it in different ways: an ``OSError`` with ENOSPC (or EDQUOT, a full quota),
SQLite's ``SQLITE_FULL``, or only words ("No space left on device", safetensors' "os error
28", torch's "file write failed") with the errno dropped somewhere along the exception chain.
SQLite may even report a plain "disk I/O error" when it cannot grow a file; that counts as a
full disk only when the disk really is (next to) full.
"""
from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

#: what libraries say when a write ran out of space (lower case; searched in every message of the chain)
FULL_MARKERS = ("no space left", "os error 28", "storagefull", "file write failed", "disk is full")
#: below this much free space a failed write is taken for a full disk
LOW_SPACE = 1 << 20


def free_bytes(path: Path) -> int:
    """Free space on the disk that holds ``path`` (or its nearest existing parent)."""
    for p in [path, *path.parents]:
        if p.exists():
            return shutil.disk_usage(p).free
    return shutil.disk_usage("/").free  # pragma: no cover


def says_full(e: BaseException | None) -> bool:
    """Whether ``e`` or anything that caused it says the disk (or quota) is full."""
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(e, sqlite3.Error) and getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        if any(m in str(e).lower() for m in FULL_MARKERS):
            return True
        e = e.__cause__ or e.__context__
    return False


def nearly_full(where: Path) -> bool:
    """Whether the disk holding ``where`` has less than :data:`LOW_SPACE` free (False when it cannot tell)."""
    try:
        return free_bytes(where) < LOW_SPACE
    except OSError:
        return False


def disk_full(e: BaseException, where: Path | None = None, *, failed_writes: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether ``e`` is a full disk: it says so (:func:`says_full`), or it is one of ``failed_writes``
    (errors that drop the reason, e.g. ``RuntimeError`` from torch) and the disk under ``where`` is nearly full."""
    if says_full(e):
        return True
    return where is not None and isinstance(e, failed_writes) and nearly_full(where)
