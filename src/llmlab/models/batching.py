"""Continuous batching: one decode thread steps every running request together.

Requests are queued (bounded: a full queue raises :class:`~llmlab.errors.BusyError`
instead of growing without limit, and a request that waits longer than ``queue_timeout_s``
fails with :class:`~llmlab.errors.QueueTimeoutError`) and admitted first-in, first-out as soon as the
engine has free slots and KV-cache cells for them. Each step then samples the next token
of *every* active sequence of *every* request and evaluates them all in one batched
call — so eight clients share the model instead of waiting in line, and a single
request goes through exactly the same code. A reader that stops iterating cancels its
request and frees its slots at the next step.

Every scheduler in the process is stepped by the same thread (:class:`_DecodeThread`): each
llama.cpp step is an OpenMP parallel region, and two threads that start such regions keep
two OpenMP teams, which on a small machine halves the decoding of every model in the process.
"""
from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterator

import numpy as np

from ..errors import BackendError, BusyError, InvalidParameterError, LLMLabError, QueueTimeoutError
from ..types import HANDOFF, PENDING, Delta, GenerationParams, ReaderSignal, Sequence_
from .decoding import RequestState, SlotEngine
from .streaming import Reader, take_reader

log = logging.getLogger(__name__)

_DONE = object()

# The decode thread hands every token to reader threads (a CLI loop, an HTTP event loop). With
# CPython's default 5 ms GIL switch interval each hand-off can stall the next decode step by up
# to 5 ms; at 0.5 ms the server streams ~20 % more tokens/s for 1 and for 8 clients (bench/serve.py).
GIL_SWITCH_INTERVAL_S = 0.0005


class _SwitchInterval:
    """Holds the process's GIL switch interval at :data:`GIL_SWITCH_INTERVAL_S` while decode loops run.

    ``sys.setswitchinterval`` is process-wide, so it is lowered when the first decode loop starts
    and restored to what it was when the last one ends (unless someone else changed it since).
    It is only ever lowered: a process that already runs with a shorter interval keeps it.
    """

    _lock = threading.Lock()
    _users = 0
    _saved: float | None = None

    @classmethod
    def acquire(cls) -> None:
        with cls._lock:
            if cls._users == 0 and sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
                cls._saved = sys.getswitchinterval()
                sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
            cls._users += 1

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users -= 1
            if cls._users == 0 and cls._saved is not None:
                if sys.getswitchinterval() == GIL_SWITCH_INTERVAL_S:
                    sys.setswitchinterval(cls._saved)
                cls._saved = None


@dataclass(eq=False)
class _Request:
    state: RequestState
    out: "queue.SimpleQueue[Any]" = field(default_factory=queue.SimpleQueue)
    slots: list[int] = field(default_factory=list)
    logits: list[np.ndarray] = field(default_factory=list)
    cancelled: bool = False
    queued_at: float = field(default_factory=time.monotonic)
    deltas: bool = True  # False: only the first delta is handed over (its time is the first token's), then the result
    started: bool = False  # a delta was handed over
    reader: Reader | None = None  # a reader that must not block (models.streaming.reading): woken per item


class _DecodeThread:
    """The one thread that runs the decode steps of every :class:`Scheduler` in the process.

    llama.cpp's CPU backend runs each step as an OpenMP parallel region, and every thread that
    starts one keeps a team of OpenMP workers alive. libgomp counts the threads of all teams and,
    once they outnumber the cores, cuts every barrier's spin-wait short (the same effect as torch
    on a long-lived thread, see :mod:`llmlab.threads`). With a decode thread per model, a second
    llama.cpp model that had generated once left every model of the process decoding at half speed,
    even while it sat idle (75 against 150–160 tok/s, two SmolLM2 models on 2 cores). One thread for
    all of them keeps one team, and two busy models take turns step by step instead of
    oversubscribing the cores. It ends when the last scheduler closes, and its team with it.
    """

    _lock = threading.Lock()  # guards _current; taken before any instance's cv
    _current: "_DecodeThread | None" = None

    def __init__(self) -> None:
        self.cv = threading.Condition()
        self.schedulers: list[Scheduler] = []
        self.thread = threading.Thread(target=self._run, name="llmlab-decode", daemon=True)

    @classmethod
    def register(cls, sched: "Scheduler") -> "_DecodeThread":
        with cls._lock:
            dt, start = cls._current, False
            if dt is None:
                dt = cls._current = _DecodeThread()
                start = True
            with dt.cv:
                dt.schedulers.append(sched)
            if start:
                try:
                    dt.thread.start()
                except BaseException:
                    cls._current = None
                    raise
        return dt

    def wake(self) -> None:
        with self.cv:
            self.cv.notify()

    def _run(self) -> None:
        while True:
            with self.cv:
                while True:
                    work = [s for s in self.schedulers if s._has_work()]
                    if work or not self.schedulers:
                        break
                    self.cv.wait()
            if not work:  # the last scheduler closed: end, unless one registered meanwhile
                with _DecodeThread._lock:
                    with self.cv:
                        if self.schedulers:
                            continue
                        if _DecodeThread._current is self:
                            _DecodeThread._current = None
                        return
            for sched in work:
                if sched._tick():
                    with self.cv:
                        self.schedulers.remove(sched)
                    sched._stopped.set()


def relay(events: Iterator[Any], t0: float) -> Generator[Any, None, tuple[list[Sequence_], float | None]]:
    """Pass on what a request from :meth:`Scheduler.submit` yields — its deltas, and the signals for a
    reader that must not block — and return its sequences and the seconds from ``t0`` to its first
    delta (a backend's ``stream`` builds its Completion from them). ``events`` is closed however this ends."""
    first: float | None = None
    seqs: list[Sequence_] = []
    try:
        for ev in events:
            if isinstance(ev, Delta):
                if first is None:
                    first = time.perf_counter() - t0
                yield ev
            elif isinstance(ev, ReaderSignal):
                yield ev
            else:
                seqs = ev
    finally:
        events.close()  # type: ignore[attr-defined]
    return seqs, first


def _forget_the_decode_thread() -> None:
    """In a forked child the parent's decode thread does not exist: its first scheduler starts one."""
    _DecodeThread._lock = threading.Lock()
    _DecodeThread._current = None


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_forget_the_decode_thread)


class Scheduler:
    """Owns a :class:`SlotEngine`; its decode loop runs on the process's decode thread."""

    def __init__(self, engine: SlotEngine, *, max_waiting: int = 64, queue_timeout_s: float | None = None):
        self.engine = engine
        self.max_waiting = max_waiting
        self.queue_timeout_s = queue_timeout_s
        self._waiting: deque[_Request] = deque()
        self._active: list[_Request] = []
        self._free: list[int] = list(range(engine.n_slots))
        # prompt tokens evaluated per step at most (one request is always admitted whole)
        self.prefill_budget = int(getattr(engine, "n_batch", 512))
        self._cv = threading.Condition()
        self._closed = False
        self._stopped = threading.Event()  # set by the decode thread once it has let go of this scheduler
        _SwitchInterval.acquire()  # released when the decode thread lets go of it (close)
        try:
            self._decoder = _DecodeThread.register(self)
        except BaseException:
            _SwitchInterval.release()
            raise

    # -- client side -----------------------------------------------------------------------
    def submit(self, prompt_ids: list[int], params: GenerationParams, *, piece: Callable[[int], str],
               constraint: Any = None, deltas: bool = True) -> Iterator[Delta | list[Sequence_]]:
        """Queue a request; iterate the result for its deltas and, last, its sequences.

        ``deltas=False`` (a caller that only wants the result): the first delta still comes (it
        times the first token), the rest do not — no thread wakes per token. Submitted inside
        :func:`~llmlab.models.streaming.reading`, the request is read without blocking (``_events``).
        """
        if params.num_return_sequences > self.engine.n_slots:
            raise InvalidParameterError(
                f"num_return_sequences={params.num_return_sequences}: this model serves at most "
                f"{self.engine.n_slots} sequences at once")
        state = RequestState(prompt_ids, params, n_ctx=self.engine.n_ctx, is_eog=self.engine.is_eog,
                             token_bytes=self.engine.token_bytes, piece=piece, constraint=constraint)
        req = _Request(state, deltas=deltas, reader=take_reader())
        with self._cv:
            if self._closed:
                raise BackendError("the model was closed")
            if len(self._waiting) >= self.max_waiting:
                raise BusyError(f"{len(self._waiting)} requests are already waiting for this model; try again shortly",
                                retry_after_s=max(1.0, len(self._active) * 0.5))
            self._waiting.append(req)
        self._decoder.wake()
        return self._events(req)

    def _events(self, req: _Request) -> Iterator[Any]:
        """The request's deltas, then its sequences. With a reader (``req.reader``) it never
        blocks: it yields ``PENDING`` when nothing is ready, and ``HANDOFF`` before the
        sequences (what the caller does with them may block), after which it reads as usual."""
        finished = False
        nonblocking = req.reader is not None
        try:
            while True:
                if nonblocking:
                    try:
                        ev = req.out.get_nowait()
                    except queue.Empty:
                        yield PENDING
                        continue
                else:
                    ev = req.out.get()
                if ev is _DONE:
                    finished = True
                    return
                if isinstance(ev, BaseException):
                    finished = True
                    raise ev
                if nonblocking and isinstance(ev, list):
                    nonblocking = False
                    yield HANDOFF
                yield ev
        finally:
            if not finished:  # the reader went away: stop generating for it
                req.cancelled = True
                self._decoder.wake()

    @property
    def load(self) -> dict[str, int]:
        with self._cv:
            return {"active": len(self._active), "waiting": len(self._waiting), "free_slots": len(self._free),
                    "slots": self.engine.n_slots}

    def close(self) -> None:
        """Fail what is queued or running, and return once the decode thread has let go of the engine."""
        with self._cv:
            self._closed = True
        self._decoder.wake()
        if threading.current_thread() is not self._decoder.thread:
            self._stopped.wait(timeout=30)

    # -- the decode thread -----------------------------------------------------------------
    @staticmethod
    def _put(req: _Request, item: Any) -> None:
        req.out.put(item)
        if req.reader is not None:
            try:
                req.reader.wake()
            except Exception:  # a reader gone (its event loop closed) must not stop the others' step
                log.debug("waking a stream's reader failed", exc_info=True)

    def _has_work(self) -> bool:
        return self._closed or bool(self._waiting) or bool(self._active)

    def _tick(self) -> bool:
        """One step (on the decode thread); True once the scheduler is closed and let go of."""
        with self._cv:
            closed = self._closed
            if closed:
                pending = list(self._waiting) + self._active
                self._waiting.clear()
                self._active.clear()
        if closed:
            for req in pending:
                self._put(req, BackendError("the model was closed"))
            _SwitchInterval.release()
            return True
        try:
            self._iteration()
        except Exception as e:  # never let the thread die: fail the running requests instead
            log.exception("decode loop failed")
            err = e if isinstance(e, LLMLabError) else BackendError(f"generation failed: {e}")
            for req in list(self._active):
                self._put(req, err)
                self._release(req)
        return False

    def _iteration(self) -> None:
        entries: list[tuple[int, int]] = []
        stepping: list[tuple[_Request, int]] = []  # (request, how many of the entries are its own)
        # 1. sample the next token of every active sequence (consumes the last step's logits)
        for req in list(self._active):
            if req.cancelled:
                req.state.cancel()
                self._release(req)
                continue
            try:
                deltas, pending = req.state.step(req.logits)
            except LLMLabError as e:
                self._put(req, e)
                self._release(req)
                continue
            if deltas and (req.deltas or not req.started):
                for d in deltas if req.deltas else deltas[:1]:
                    self._put(req, d)
                req.started = True
            if req.state.done:
                self._put(req, req.state.result())
                self._put(req, _DONE)
                self._release(req)
                continue
            entries += [(req.slots[i], tok) for i, tok in pending]
            stepping.append((req, len(pending)))
        # 2. admit waiting requests while there is room; their prompts are evaluated in the same batch
        #    as the running sequences' next tokens (3.), so an arrival costs the running streams no
        #    extra llama_decode call and waits for no step boundary beyond this one
        logits = self._admit(entries)
        # 3. one batched evaluation for every sequence that continues
        if entries:
            if logits is None:
                logits = self.engine.step(entries)
            k = 0
            for req, n in stepping:
                req.logits = logits[k : k + n]
                k += n

    def _cells_in_use(self) -> int:
        idle = sum(self.engine.cached_len(s) for s in self._free)
        return idle + sum(r.state.cells for r in self._active)

    def _expire(self) -> None:
        """Fail the requests that have waited longer than ``queue_timeout_s`` (call with ``_cv`` held)."""
        if self.queue_timeout_s is None or not self._waiting:
            return
        now = time.monotonic()
        if now - self._waiting[0].queued_at <= self.queue_timeout_s:
            return  # the oldest is within its time, so are the others
        keep: deque[_Request] = deque()
        for req in self._waiting:
            waited = now - req.queued_at
            if waited > self.queue_timeout_s and not req.cancelled:
                self._put(req, QueueTimeoutError(
                    f"the request waited {waited:.1f}s for a free slot of this model (the limit is "
                    f"{self.queue_timeout_s:g}s); try again shortly", retry_after_s=max(1.0, self.queue_timeout_s)))
            elif not req.cancelled:
                keep.append(req)
        self._waiting = keep

    def _admit(self, entries: list[tuple[int, int]]) -> list[np.ndarray] | None:
        """Admit waiting requests first-in, first-out while slots, KV cells and this step's
        prefill budget last, then evaluate all their prompts together in one batched prefill —
        with ``entries`` (the running sequences' next tokens) when there are any: then the
        logits of ``entries`` are returned, else None (nothing evaluated for them)."""
        with self._cv:
            self._expire()
        admitted: list[_Request] = []
        budget = self.prefill_budget
        while True:
            with self._cv:
                while self._waiting and self._waiting[0].cancelled:
                    self._waiting.popleft()
                if not self._waiting:
                    break
                req = self._waiting[0]
                n = req.state.n
                if len(self._free) < n:
                    break
                ids = req.state.prompt_ids
                own = {s: self.engine.prefix_len(s, ids) for s in self._free}
                cached = own
                if self.engine.shares_prefixes:  # any free slot can start from the longest prefix cached anywhere
                    anywhere = max(self.engine.prefix_len(s, ids) for s in range(self.engine.n_slots))
                    cached = {s: max(c, anywhere) for s, c in own.items()}
                # the longest prefix of this prompt; among equals the slot whose cache loses the fewest tokens
                # beyond it, so other conversations (that share only a system prompt) keep theirs; a slot
                # that holds this whole prompt loses only its old continuation (the same request again), and
                # among those the one that holds it itself wins: nothing to copy, no other conversation moved
                def lost(s: int) -> int:
                    return 0 if own[s] >= len(ids) - 1 else self.engine.cached_len(s) - own[s]

                slot = max(cached, key=lambda s: (cached[s], -lost(s), own[s]))
                cost = len(req.state.prompt_ids) - cached[slot]
                if admitted and cost > budget:
                    break  # the rest waits for the next step, so running streams do not stall
                need = req.state.cells - self.engine.cached_len(slot)
                if self._cells_in_use() + need > self.engine.n_ctx:
                    for s in self._free:  # give up cached prefixes before making anyone wait
                        if s != slot:
                            self.engine.drop(s)
                    if self._cells_in_use() + need > self.engine.n_ctx and (self._active or admitted):
                        break  # wait for running requests to finish
                self._waiting.popleft()
                self._free.remove(slot)
                others = [s for s in self._free if s != slot][: n - 1]
                for s in others:
                    self._free.remove(s)
                req.slots = [slot] + others
                budget -= cost
            if req.state.done:  # nothing to generate (max_new_tokens=0)
                self._put(req, req.state.result())
                self._put(req, _DONE)
                self._release(req, keep_cache=False)
                continue
            admitted.append(req)
            self._active.append(req)  # counts its cells while later requests are considered
        if not admitted:
            return None
        items = [(req.slots[0], req.state.prompt_ids) for req in admitted]
        logits: list[np.ndarray] | None = None
        try:
            if entries:
                logits, prompt_logits = self.engine.step_and_prefill(entries, items)
            else:
                prompt_logits = self.engine.prefill(items)
            firsts: list[np.ndarray | LLMLabError] = list(prompt_logits)
        except LLMLabError as e:  # one bad prompt must not fail the others: evaluate them one by one
            # (a failed call evaluated nothing for ``entries``: the caller steps them alone)
            firsts = [e] if len(items) == 1 else [self._prefill_one(item) for item in items]
        for req, first in zip(admitted, firsts):
            if isinstance(first, LLMLabError):
                self._put(req, first)
                self._release(req, keep_cache=False)
                continue
            for s in req.slots[1:]:  # num_return_sequences > 1: the others share the prompt's cells
                self.engine.fork(req.slots[0], s)
            req.logits = [first] * req.state.n
        return logits

    def _prefill_one(self, item: tuple[int, list[int]]) -> np.ndarray | LLMLabError:
        try:
            return self.engine.prefill([item])[0]
        except LLMLabError as e:
            return e

    def _release(self, req: _Request, keep_cache: bool = True) -> None:
        if req in self._active:
            self._active.remove(req)
        for i, s in enumerate(req.slots):
            if i > 0 or not keep_cache:
                self.engine.drop(s)  # forks share the prompt's cells; keep only the first slot's cache
        with self._cv:
            self._free.extend(req.slots)
            req.slots = []
