"""API keys with roles, and the key file re-read when it changes (rotation without a restart).

A key entry is ``KEY``, ``sha256:HEX`` (the key's hash) or either with a role in front:
``admin:KEY``, ``user:sha256:HEX``; a bare entry is an admin key. Keys are hashed as soon as
they are read and compared in constant time against every stored hash. What the rest of the
server sees of a key is a :class:`Principal`: a short id derived from the hash (never the key)
and the role.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ConfigError

log = logging.getLogger(__name__)

Role = Literal["admin", "user"]
ROLES: tuple[str, ...] = ("admin", "user")
HASH_PREFIX = "sha256:"
MIN_KEY_CHARS = 8


def hash_key(key: str) -> str:
    """The stored form of an API key: ``sha256:HEX``."""
    return HASH_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(hashed: str) -> str:
    """A short, non-secret id for a key (its hash's first 12 hex digits), for budgets, logs and ownership."""
    return hashed.removeprefix(HASH_PREFIX)[:12]


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a key's id and role."""

    key_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


#: a server without keys (loopback only) lets every request act as this
ANONYMOUS = Principal("anonymous", "admin")


def _is_hash(value: str) -> bool:
    return value.startswith(HASH_PREFIX) and len(value) == len(HASH_PREFIX) + 64 and all(
        c in "0123456789abcdef" for c in value[len(HASH_PREFIX):])


def parse_entry(entry: str) -> tuple[str, Role]:
    """``(sha256:HEX, role)`` for one key entry; a ValueError says what is wrong (never echoing the key)."""
    role: Role = "admin"
    head, sep, rest = entry.partition(":")
    if sep and head in ROLES:
        role, entry = head, rest  # type: ignore[assignment]
    if entry.startswith(HASH_PREFIX):
        if not _is_hash(entry):
            raise ValueError("a key hash must be sha256:<64 lowercase hex digits>")
        return entry, role
    if len(entry) < MIN_KEY_CHARS:
        raise ValueError(f"an API key must be at least {MIN_KEY_CHARS} characters long")
    return hash_key(entry), role


def read_keys_file(path: str | Path) -> list[tuple[str, Role]]:
    """Entries of a key file: one per line (``#`` comments), each ``[admin:|user:]KEY`` or ``…sha256:HEX``."""
    p = Path(path).expanduser()
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the API keys file {p}: {getattr(e, 'strerror', None) or e}") from None
    out = []
    for n, line in enumerate(lines, 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            out.append(parse_entry(entry))
        except ValueError as e:
            raise ConfigError(f"{p}:{n}: {e}") from None
    if not out:
        raise ConfigError(f"the API keys file {p} holds no key (one [admin:|user:]KEY or sha256:HEX per line)")
    return out


class KeyRing:
    """The keys a server accepts: fixed ones (flags, environment, server.toml) plus a key file.

    The file is looked at (one ``stat``) at most every ``check_s`` seconds and re-read when its
    size, modification time or inode changed. A file that has become unreadable or invalid
    accepts no key at all until it is fixed (failing closed), and says so in the log.
    """

    def __init__(self, fixed: dict[str, Role], path: str | Path | None = None, *, check_s: float = 1.0):
        self._fixed = dict(fixed)
        self.path = None if path is None else Path(path).expanduser()
        self.check_s = check_s
        self._lock = threading.Lock()
        self._file: dict[str, Role] = {}
        self._seen: tuple | None = None
        self._checked = 0.0
        if self.path is not None:
            self._file = dict(read_keys_file(self.path))  # a bad file fails the start, with its line
            self._seen = self._signature()

    @property
    def configured(self) -> bool:
        """Whether this server checks keys at all (it does as soon as any key or a key file is given)."""
        return bool(self._fixed) or self.path is not None

    def _signature(self) -> tuple | None:
        try:
            st = os.stat(self.path)  # type: ignore[arg-type]
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _refresh(self) -> None:
        import time

        if self.path is None:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._checked < self.check_s:
                return
            self._checked = now
            sig = self._signature()
            if sig == self._seen:
                return
            self._seen = sig
            try:
                self._file = dict(read_keys_file(self.path))
                log.info("API keys file %s re-read: %d key(s)", self.path, len(self._file))
            except ConfigError as e:
                self._file = {}
                log.error("%s — its keys are refused until it is fixed", e)

    def entries(self) -> dict[str, Role]:
        """Every accepted hash with its role (the file's entries win over fixed ones)."""
        self._refresh()
        return {**self._fixed, **self._file}

    def match(self, presented: str | None) -> Principal | None:
        """The principal for a presented key, or None. Every stored hash is compared, in constant time."""
        if presented is None:
            return None
        h = hash_key(presented).encode()
        found: Principal | None = None
        for stored, role in self.entries().items():
            if hmac.compare_digest(h, stored.encode()):
                found = Principal(key_id(stored), role)
        return found

    def by_id(self, kid: str) -> Principal | None:
        """The principal whose key has this id now (None once the key is removed: its sessions end)."""
        for stored, role in self.entries().items():
            if hmac.compare_digest(key_id(stored).encode(), kid.encode()):
                return Principal(kid, role)
        return None

    def __len__(self) -> int:
        return len(self.entries())
