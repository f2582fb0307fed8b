"""Background jobs (ingest, prompt grids, model pulls, fine-tuning) with progress and stop.

A job runs in a worker thread (at most ``max_running`` at once; the rest wait their turn)
and reports through its :class:`JobContext`: ``progress(done, total, message)`` and
``event(**data)`` (e.g. a loss point; events are numbered by ``seq`` so a client can ask
for the ones it has not seen). Stopping sets a flag: an ordinary job's next progress call
turns it into :class:`JobCancelled` (status ``cancelled``); a *graceful* job (training)
watches ``ctx.cancelled`` itself, winds down cleanly and keeps its result (status
``stopped``). Callers poll :meth:`JobManager.get` or follow :meth:`JobManager.watch` (the
server exposes them as ``GET /lab/jobs/{id}`` and its event stream; the web UI polls). Only
the newest ``max_kept`` finished jobs are remembered, so memory stays bounded. This module is
part of the core — no HTTP here — so the server and the web UI can both use it.

Every job has an ``owner``: whoever the ledger's records would belong to when it was submitted
(the server key's id on a server with keys, see :func:`llmlab.ledger.store.current_owner`; None
for local use). :meth:`JobManager.get`, :meth:`~JobManager.list` and :meth:`~JobManager.stop` take
an ``owner`` filter: given one, another owner's job is as absent as a job that never existed.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import itertools
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from .errors import LLMLabError
from .threads import in_fresh_thread

log = logging.getLogger(__name__)

TERMINAL = ("succeeded", "failed", "cancelled", "stopped")
MAX_EVENTS = 2000


class JobCancelled(LLMLabError):
    code = "cancelled"


class JobNotFoundError(LLMLabError):
    """No job by that id (finished jobs are forgotten after a while); the server answers 404."""

    code = "not_found"


@dataclass
class Job:
    id: str
    kind: str
    params: dict[str, Any]
    status: str = "queued"  # queued | running | succeeded | failed | cancelled | stopped
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    error: dict[str, Any] | None = None
    events: deque = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))
    n_events: int = 0  # events ever reported (the newest has seq == n_events)
    version: int = 0
    graceful: bool = False
    owner: str | None = None  # the key id that started it (None: local use, a server without keys)
    cancel: threading.Event = field(default_factory=threading.Event)
    future: concurrent.futures.Future | None = None

    @property
    def stop_requested(self) -> bool:
        return self.cancel.is_set()

    def events_since(self, seq: int = 0) -> list[dict[str, Any]]:
        """The events after ``seq`` that are still kept (the oldest go once there are :data:`MAX_EVENTS`)."""
        return [e for e in list(self.events) if e["seq"] > seq]

    def to_dict(self, *, events: bool = False, since: int = 0) -> dict[str, Any]:
        d = {"id": self.id, "kind": self.kind, "owner": self.owner, "status": self.status, "params": self.params,
             "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
             "progress": self.progress, "result": self.result, "error": self.error, "n_events": self.n_events,
             "stop_requested": self.stop_requested}
        if events:
            d["events"] = self.events_since(since)
        return d


class JobContext:
    """What a running job uses to report progress and notice a stop request."""

    def __init__(self, job: Job, touch: Callable[[], None]):
        self._job = job
        self._touch = touch

    @property
    def job_id(self) -> str:
        return self._job.id

    @property
    def cancelled(self) -> bool:
        return self._job.cancel.is_set()

    def check(self) -> None:
        """Raise :class:`JobCancelled` once a stop was asked for (a graceful job is never interrupted)."""
        if self._job.cancel.is_set() and not self._job.graceful:
            raise JobCancelled(f"job {self._job.id} was stopped")

    def progress(self, done: float | None = None, total: float | None = None, message: str | None = None,
                 **extra: Any) -> None:
        p = dict(self._job.progress)
        if done is not None:
            p["done"] = done
        if total is not None:
            p["total"] = total
        if message is not None:
            p["message"] = message
        p.update(extra)
        if p.get("total"):
            p["fraction"] = round(min(1.0, float(p.get("done") or 0) / float(p["total"])), 4)
        self._job.progress = p
        self._touch()
        self.check()

    def event(self, **data: Any) -> None:
        job = self._job
        job.n_events += 1
        job.events.append({"seq": job.n_events, "t": round(time.time(), 3), **data})
        self._touch()
        self.check()


def run_niced(fn: Callable[[], Any], increment: int = 10) -> Any:
    """Run ``fn()`` in a fresh thread with its CPU priority lowered by ``increment``; return its result.

    Background work that must not slow down generation (an embedding pass while someone
    chats) runs here. On Linux a nice value is per thread, so only this thread — and the
    threads it starts — is lowered; the job pool's threads, reused by later jobs, are not.
    """
    def niced() -> Any:
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
        except (OSError, AttributeError):  # not Linux/Unix: run at normal priority
            pass
        return fn()

    return in_fresh_thread(niced)


class JobManager:
    def __init__(self, max_running: int = 2, max_kept: int = 200):
        self._max_running = max_running
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._max_kept = max_kept
        self._seq = itertools.count(1)

    def submit(self, kind: str, fn: Callable[[JobContext], Any], params: dict[str, Any] | None = None, *,
               graceful: bool = False) -> Job:
        """Queue ``fn(ctx)``; its return value (JSON-able) becomes the job's result.

        A ``graceful`` job is not interrupted by a stop: it polls ``ctx.cancelled``, ends
        cleanly, and its result is kept with the status ``stopped``. The job belongs to the
        submitter (the owner its ledger records get).
        """
        from .ledger.store import current_owner

        job = Job(id=f"job-{next(self._seq)}-{uuid.uuid4().hex[:8]}", kind=kind, params=params or {},
                  graceful=graceful, owner=current_owner())
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
            if self._executor is None:  # made on first use, again after a shutdown
                self._executor = concurrent.futures.ThreadPoolExecutor(self._max_running,
                                                                       thread_name_prefix="llmlab-job")
            # the job runs in the submitter's context (so its ledger records have the submitter's owner)
            job.future = self._executor.submit(contextvars.copy_context().run, self._run, job, fn)
        return job

    def _touch(self, job: Job) -> None:
        job.version += 1

    def _run(self, job: Job, fn: Callable[[JobContext], Any]) -> None:
        if job.cancel.is_set():
            self._finish(job, "cancelled")
            return
        job.status, job.started_at = "running", time.time()
        self._touch(job)
        ctx = JobContext(job, lambda: self._touch(job))
        try:
            job.result = fn(ctx)
            self._finish(job, "stopped" if job.graceful and job.cancel.is_set() else "succeeded")
        except JobCancelled:
            self._finish(job, "cancelled")
        except LLMLabError as e:
            job.error = {"message": str(e), "code": e.code}
            self._finish(job, "failed")
        except Exception as e:  # a job must never take the server down; say what failed
            log.exception("job %s (%s) failed", job.id, job.kind)
            job.error = {"message": f"{type(e).__name__}: {e}", "code": "internal_error"}
            self._finish(job, "failed")

    def _finish(self, job: Job, status: str) -> None:
        job.status, job.finished_at = status, time.time()
        self._touch(job)

    def _forget_old(self) -> None:
        done = [j for j in self._jobs.values() if j.status in TERMINAL]
        for j in done[: max(0, len(self._jobs) - self._max_kept)]:
            self._jobs.pop(j.id, None)

    def get(self, job_id: str, *, owner: str | None = None) -> Job:
        """The job by id; with ``owner``, only if that owner started it (another's job is not found)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or (owner is not None and job.owner != owner):
            raise JobNotFoundError(f"no job {job_id!r} (finished jobs are kept for a while, then forgotten); "
                                "GET /lab/jobs lists them")
        return job

    def list(self, kind: str | None = None, *, owner: str | None = None) -> list[Job]:
        """Jobs, newest first (``owner``: only the ones that owner started)."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in reversed(jobs) if (kind is None or j.kind == kind) and (owner is None or j.owner == owner)]

    def stop(self, job_id: str, *, owner: str | None = None) -> Job:
        """Ask a job to stop (``owner``: only a job that owner started; another's is not found)."""
        job = self.get(job_id, owner=owner)
        if job.status in TERMINAL:
            return job
        job.cancel.set()
        if job.future is not None and job.future.cancel():  # it had not started
            self._finish(job, "cancelled")
        self._touch(job)
        return job

    async def watch(self, job_id: str, interval_s: float = 0.2) -> AsyncIterator[Job]:
        """Yield the job now and after every change, until it ends."""
        job = self.get(job_id)
        seen = -1
        while True:
            if job.version != seen:
                seen = job.version
                yield job
                if job.status in TERMINAL:
                    return
            await asyncio.sleep(interval_s)

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for j in jobs:
            j.cancel.set()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
