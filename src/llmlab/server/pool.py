"""The model pool: models loaded lazily by name, one shared :class:`Model` per name.

Sharing matters: every request for ``smollm2-135m`` goes to the same model, whose
scheduler batches them (eight clients decode together instead of in line). Requests hold
a :class:`Lease` while they use a model; beyond ``max_loaded`` models, the least recently
used idle one is closed. The loader is injectable, so tests serve the scripted fake.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import BusyError, InvalidParameterError

log = logging.getLogger(__name__)

Loader = Callable[[str], Any]
Resolver = Callable[[str], str]


def check_model_name(name: str) -> str:
    """Refuse names no model can have (control characters, over-long path parts) with a 400."""
    if not name or len(name) > 1024 or any(ord(c) < 32 for c in name):
        raise InvalidParameterError("invalid model name: 1–1024 characters, no control characters")
    if any(len(part.encode()) > 255 for part in name.split("/")):
        raise InvalidParameterError("invalid model name: a path part is longer than 255 bytes")
    return name


@dataclass
class _Entry:
    model: Any
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)
    loaded_at: float = field(default_factory=time.time)


class Lease:
    """A model in use by one request; :meth:`release` (or ``with``) gives it back once."""

    def __init__(self, pool: "ModelPool", name: str, model: Any):
        self.pool, self.name, self.model = pool, name, model
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.pool._release(self.name)

    def __enter__(self) -> Any:
        return self.model

    def __exit__(self, *exc: Any) -> None:
        self.release()


class ModelPool:
    """Loads models on first use and keeps at most ``max_loaded`` of them.

    ``loader(name)`` returns a loaded model (raising ``ModelNotFoundError`` for unknown
    names); ``resolver(name)`` names its backend without loading it.
    """

    def __init__(self, loader: Loader, *, resolver: Resolver | None = None, max_loaded: int = 3):
        self.loader = loader
        self.resolver = resolver
        self.max_loaded = max_loaded
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._name_locks: dict[str, threading.Lock] = {}
        self._closed = False

    # -- using models -----------------------------------------------------------------------------
    def acquire(self, name: str) -> Lease:
        """The model called ``name`` (loading it if needed), held until the lease is released."""
        check_model_name(name)
        with self._lock:
            lease = self._lease_loaded(name)
            if lease is not None:
                return lease
            name_lock = self._name_locks.setdefault(name, threading.Lock())
        with name_lock:  # one load per name, however many requests ask at once
            with self._lock:  # another request may have loaded it while this one waited
                lease = self._lease_loaded(name)
                if lease is not None:
                    return lease
            self._make_room()
            t0 = time.perf_counter()
            model = self.loader(name)
            log.info("loaded model %s in %.2fs", name, time.perf_counter() - t0)
            with self._lock:
                if self._closed:
                    model.close()
                    raise BusyError("the server is shutting down", retry_after_s=5)
                self._entries[name] = _Entry(model, users=1)
            return Lease(self, name, model)

    def _lease_loaded(self, name: str) -> Lease | None:
        """A lease on ``name`` if it is loaded already, else None (call with ``self._lock`` held)."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        entry.users += 1
        entry.last_used = time.monotonic()
        return Lease(self, name, entry.model)

    def _release(self, name: str) -> None:
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                entry.users = max(0, entry.users - 1)
                entry.last_used = time.monotonic()

    def _make_room(self) -> None:
        with self._lock:
            if len(self._entries) < self.max_loaded:
                return
            idle = [(e.last_used, n) for n, e in self._entries.items() if e.users == 0]
            if not idle:
                raise BusyError(f"all {len(self._entries)} loaded models are in use and the server keeps at most "
                                f"{self.max_loaded}; try again shortly", retry_after_s=5)
            _, victim = min(idle)
            entry = self._entries.pop(victim)
        log.info("unloading idle model %s to make room", victim)
        entry.model.close()

    # -- inspecting ---------------------------------------------------------------------------------
    def backend_of(self, name: str) -> str:
        """The backend that serves ``name`` (without loading it); unknown names raise."""
        check_model_name(name)
        with self._lock:
            entry = self._entries.get(name)
        if entry is not None:
            return entry.model.backend.name
        if self.resolver is None:
            with self.acquire(name) as model:
                return model.backend.name
        return self.resolver(name)

    def loaded(self) -> list[dict[str, Any]]:
        """Every loaded model with its backend, context, users and scheduler load."""
        with self._lock:
            items = list(self._entries.items())
        out = []
        for name, e in items:
            info = e.model.info
            sched = e.model.backend.scheduler if e.model.backend.capabilities.batching else None
            out.append({"name": name, "backend": e.model.backend.name, "context_length": info.context_length,
                        "in_use": e.users, "loaded_at": e.loaded_at,
                        "threads": info.extra.get("threads") if isinstance(info.extra, dict) else None,
                        "load": sched.load if sched is not None else None})
        return out

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)

    def get_loaded(self, name: str) -> Any | None:
        with self._lock:
            e = self._entries.get(name)
        return e.model if e is not None else None

    def unload(self, name: str) -> bool:
        """Close a loaded model now; False when it was not loaded, BusyError while requests use it."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return False
            if entry.users:
                raise BusyError(f"model {name!r} is answering {entry.users} request(s); unload it when idle",
                                retry_after_s=5)
            del self._entries[name]
        entry.model.close()
        return True

    def reopen(self) -> None:
        with self._lock:
            self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            entries = list(self._entries.values())
            self._entries.clear()
        for e in entries:
            try:
                e.model.close()
            except Exception:  # pragma: no cover - closing must go on for the others
                log.exception("closing a model failed")


def default_pool(settings: Any, server: Any) -> ModelPool:
    """A pool that loads models as ``llmlab`` does, with the server's queue size and ledger policy."""
    from ..models.base import BACKENDS
    from ..models.spec import resolve

    def loader(name: str) -> Any:
        from ..models.model import load_model

        spec = resolve(name, settings)
        options: dict[str, Any] = {}
        accepts = BACKENDS.get(spec.backend).options  # declared load options of this backend kind
        if "max_waiting" in accepts:
            options["max_waiting"] = server.queue_size
        for option, value in (("parallel", server.parallel), ("queue_timeout_s", server.queue_timeout_s)):
            if option in accepts:
                options[option] = value
        if server.threads and "threads" in accepts:
            options["threads"] = server.threads
        ledger: Any = True
        if settings.ledger and server.ledger_mask_pii and settings.ledger_raw_text:
            from ..ledger import open_ledger

            ledger = open_ledger(settings, raw_text=False)  # the server masks even where the lab keeps raw text
        return load_model(name, settings=settings, ledger=ledger, **options)

    return ModelPool(loader, resolver=lambda name: resolve(name, settings).backend, max_loaded=server.max_loaded_models)
