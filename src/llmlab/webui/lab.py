"""What the web UI needs from the process it runs in: settings, the ledger, loaded models, jobs.

The server keeps one :class:`Lab`-shaped object on ``app.state.lab`` so the UI and the HTTP API
share loaded models and background jobs (a training started in the browser is a job the API
can poll and stop); without one, :class:`LocalLab` is the UI's own small model pool and job
runner. Either way models are used through ``with lab.use(name) as model:``, which loads a
model once and serializes callers, because one llama.cpp context cannot decode two requests
at once.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ContextManager, Iterator, Protocol, runtime_checkable

from ..config import Settings, load_settings
from ..jobs import JobManager

if TYPE_CHECKING:  # pragma: no cover
    from ..ledger import Ledger
    from ..models.model import Model

log = logging.getLogger(__name__)

#: answers the UI streams at once per screen; the lab decides whether they batch (the server's
#: pool) or take turns (LocalLab's per-model lock)
GENERATIONS = 8


@runtime_checkable
class Lab(Protocol):
    """The seam between the web UI and its host process."""

    settings: Settings
    #: background jobs (fine-tuning), shared with the HTTP API when the server hosts the UI
    jobs: JobManager

    def ledger(self) -> "Ledger | None":
        """The run ledger (``None`` when recording is off)."""
        ...

    def use(self, name: str | None) -> ContextManager["Model"]:
        """A loaded model for the duration of the ``with`` block (loaded on first use)."""
        ...

    def loaded(self) -> list[dict[str, Any]]:
        """The models loaded now: ``{"name", "backend", "context_length"}`` each."""
        ...

    def unload(self, name: str) -> bool:
        """Free a loaded model; ``False`` when it was not loaded."""
        ...


class LocalLab:
    """A model pool for a UI that runs without the server's own (one lock per model)."""

    def __init__(self, settings: Settings | None = None, **load_options: Any):
        self.settings = settings or load_settings()
        self._load_options = load_options
        self._models: dict[str, "Model"] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._pool_lock = threading.Lock()
        self._ledger: "Ledger | None" = None
        self.jobs = JobManager(max_running=1)  # one training at a time; the rest wait their turn

    def ledger(self) -> "Ledger | None":
        if not self.settings.ledger:
            return None
        with self._pool_lock:
            if self._ledger is None:
                from ..ledger import open_ledger

                self._ledger = open_ledger(self.settings)
            return self._ledger

    @contextmanager
    def use(self, name: str | None) -> Iterator["Model"]:
        name = name or self.settings.default_model
        with self._pool_lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            model = self._models.get(name)
            if model is None:
                from ..models.model import load_model

                log.info("web UI: loading %s", name)
                model = load_model(name, settings=self.settings, **self._load_options)
                self._models[name] = model
            yield model

    def loaded(self) -> list[dict[str, Any]]:
        return [{"name": n, "backend": m.backend.name, "context_length": m.context_length}
                for n, m in sorted(self._models.items())]

    def unload(self, name: str) -> bool:
        with self._pool_lock:
            lock = self._locks.get(name)
        if lock is None:
            return False
        with lock:  # never close a model while a request is decoding on it
            model = self._models.pop(name, None)
        if model is None:
            return False
        model.close()
        return True

    def close(self) -> None:
        self.jobs.shutdown()
        for name in list(self._models):
            self.unload(name)
        if self._ledger is not None:
            self._ledger.close()
