"""Browser sessions for the web UI: a signed, expiring cookie, CSRF tokens and login throttling.

The cookie holds no key — only the key's short id, an expiry and the session's CSRF token,
signed with HMAC-SHA256 by a secret kept in ``$LLMLAB_HOME/server/session.key`` (so logins
survive a restart). Every request re-checks that the key id is still accepted, so removing a
key from the key file ends its sessions too.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SESSION_COOKIE = "llmlab_session"
LOGIN_CSRF_COOKIE = "llmlab_login_csrf"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_secret(path: Path) -> bytes:
    """The signing secret at ``path`` (created once, readable by its owner only); a fresh in-memory
    one when the lab's home cannot hold it (sessions then end with the process)."""
    try:
        return path.read_bytes()[:64] or _create_secret(path)
    except FileNotFoundError:
        try:
            return _create_secret(path)
        except OSError as e:
            log.warning("cannot keep the session secret in %s (%s); logins end when the server stops", path, e)
            return secrets.token_bytes(32)
    except OSError as e:
        log.warning("cannot read the session secret %s (%s); logins end when the server stops", path, e)
        return secrets.token_bytes(32)


def _create_secret(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes()[:64]
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    return secret


@dataclass(frozen=True)
class Session:
    key_id: str
    expires: int
    csrf: str


class SessionSigner:
    """Issues and reads session cookie values."""

    def __init__(self, secret: bytes, ttl_s: int):
        self._secret = secret
        self.ttl_s = ttl_s

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def issue(self, key_id: str) -> tuple[str, Session]:
        s = Session(key_id, int(time.time()) + self.ttl_s, secrets.token_urlsafe(24))
        payload = _b64(json.dumps({"k": s.key_id, "e": s.expires, "c": s.csrf}, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}", s

    def read(self, value: str | None) -> Session | None:
        """The session in a cookie value, or None when it is missing, forged or expired."""
        if not value or value.count(".") != 1:
            return None
        payload, sig = value.split(".")
        if not hmac.compare_digest(sig, self._sign(payload)):
            return None
        try:
            d = json.loads(_unb64(payload))
            s = Session(str(d["k"]), int(d["e"]), str(d["c"]))
        except (ValueError, KeyError, TypeError):
            return None
        return s if s.expires > time.time() else None

    def csrf_for_login(self, nonce: str) -> str:
        """The login form's token for the random ``nonce`` kept in the login cookie."""
        return self._sign("login:" + nonce)


class Throttle:
    """Failed logins (or wrong API keys) per client address: after ``max_failures`` within
    ``lockout_s`` the address waits ``lockout_s`` before it may try again."""

    MAX_TRACKED = 10_000

    def __init__(self, max_failures: int, lockout_s: float):
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, list[float]] = OrderedDict()

    def wait_s(self, addr: str) -> float:
        """Seconds ``addr`` must wait before its next try (0: it may try now)."""
        now = time.monotonic()
        with self._lock:
            fails = [t for t in self._seen.get(addr, []) if now - t < self.lockout_s]
            if fails:
                self._seen[addr] = fails
            else:
                self._seen.pop(addr, None)
            if len(fails) < self.max_failures:
                return 0.0
            return max(0.0, self.lockout_s - (now - fails[-1]))

    def failed(self, addr: str) -> None:
        with self._lock:
            self._seen.setdefault(addr, []).append(time.monotonic())
            self._seen.move_to_end(addr)
            while len(self._seen) > self.MAX_TRACKED:
                self._seen.popitem(last=False)

    def succeeded(self, addr: str) -> None:
        with self._lock:
            self._seen.pop(addr, None)
