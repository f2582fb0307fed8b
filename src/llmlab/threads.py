"""How many CPU threads llama.cpp gets, and how its OpenMP threads wait — chosen once per process.

On an idle machine every core decodes and OpenMP threads spin between operations (its
default; sleeping between the ~100 ops of a token costs ~25 % speed). On a busy machine
that same setting collapses: a spinning thread that loses its core to another process
stalls every step of the others (3–8 tok/s with 2 threads where 1 thread gave 56). So at
the first model load the load of the machine is sampled briefly (psutil, else the load
average) and the threads are the cores left free, with OpenMP told to wait passively when
other work shares the cores. OpenMP reads its wait policy once, when the runtime starts,
so the choice is made before llama.cpp is imported and then kept. ``LLMLAB_THREADS`` (or
``threads=``) overrides the count; an ``OMP_WAIT_POLICY`` already set is never changed.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

log = logging.getLogger(__name__)

SAMPLE_S = 0.15  # how long the CPU load is sampled
BUSY_CORE = 0.35  # another process using this share of a core or more counts as competition


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count and OpenMP wait policy chosen at start-up, and why."""

    threads: int
    wait_policy: str  # "active" (spin, OpenMP's default) or "passive"
    cores: int
    busy_cores: float  # cores other processes kept busy while sampling
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"threads": self.threads, "wait_policy": self.wait_policy, "cores": self.cores,
                "busy_cores": round(self.busy_cores, 2), "reason": self.reason}


def usable_cores() -> int:
    """The cores this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def busy_cores(sample_s: float = SAMPLE_S) -> tuple[float, str]:
    """How many cores other processes keep busy now, and how that was measured."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with the ui extra's stack
        psutil = None
    if psutil is not None:
        me = psutil.Process()
        me.cpu_percent(None)
        total = psutil.cpu_percent(interval=sample_s)  # system-wide, % of all cores
        own = me.cpu_percent(None) / 100.0
        n = psutil.cpu_count() or usable_cores()
        return max(0.0, total / 100.0 * n - own), f"CPU use {total:.0f}% over {sample_s:.2f}s"
    try:
        one_min = os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return 0.0, "load unknown"
    return max(0.0, one_min - 1.0), f"1-minute load average {one_min:.2f}"  # our own start-up counts as ~1


def decide(cores: int, busy: float, how: str) -> ThreadChoice:
    """The policy itself (pure, so it is tested without a busy machine)."""
    if busy < BUSY_CORE:
        return ThreadChoice(cores, "active", cores, busy,
                            f"{cores} core(s), idle ({how}): {cores} thread(s), OpenMP threads spin between ops")
    free = max(1, int(cores - busy + 0.5))
    policy = "passive" if free > 1 else "active"  # one thread never waits for another
    why = "wait passively" if policy == "passive" else "need no waiting (one thread)"
    return ThreadChoice(free, policy, cores, busy,
                        f"{cores} core(s), {busy:.1f} busy with other work ({how}): {free} thread(s) so none "
                        f"competes for a core, OpenMP threads {why}")


@functools.lru_cache(maxsize=1)
def choose() -> ThreadChoice:
    """The process's choice, made on first use and then kept (OpenMP reads its policy once)."""
    c = decide(usable_cores(), *busy_cores())
    if c.wait_policy == "passive" and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # before llama.cpp (and its OpenMP runtime) loads
    log.info("llama.cpp threads: %s", c.reason)
    return c


def resolve(threads: int | None) -> tuple[int, str]:
    """The thread count to use and why: an explicit count (``LLMLAB_THREADS``, ``--threads``) wins."""
    if threads:
        return threads, f"{threads} thread(s) as configured (LLMLAB_THREADS / --threads)"
    c = choose()
    return c.threads, c.reason


# -- OpenMP teams of other libraries ----------------------------------------------------------------
# llama.cpp (ggml) and torch share one OpenMP runtime in a process (both load libgomp.so.1, so the
# loader maps it once). libgomp counts the threads of *every* team in the process, and a team lives
# as long as the thread that started it; once the count exceeds the cores, it cuts every barrier's
# busy-wait to ~100 spins. ggml's barriers are OpenMP barriers (a few hundred per token), so one
# torch call from a long-lived thread (an e5 query embedding in `rag ask`, a server worker thread)
# left llama.cpp decoding at 0.55-0.7x for the rest of the process (docs/server.md). A team is
# torn down when its thread ends, so torch work runs in a thread that ends with it.
_T = TypeVar("_T")


def in_fresh_thread(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``fn(*args, **kwargs)`` in a new thread that ends when it returns; its result or exception.

    For library calls that start OpenMP teams (torch): the team ends with the thread, so it
    does not make llama.cpp's OpenMP barriers in the same process sleep instead of spin.
    Costs a thread start (~0.1 ms) per call: use it per batch, not per tensor operation.
    """
    return start_in_fresh_thread(fn, *args, **kwargs).result()


class Pending(Generic[_T]):
    """A call running in a thread of its own (:func:`start_in_fresh_thread`); :meth:`result` waits for it."""

    def __init__(self, fn: Callable[..., _T], args: tuple, kwargs: dict):
        self._box: dict[str, Any] = {}

        def run() -> None:
            try:
                self._box["value"] = fn(*args, **kwargs)
            except BaseException as e:  # re-raised in the thread that asks for the result
                self._box["error"] = e

        self._thread = threading.Thread(target=run, name="llmlab-openmp-scope", daemon=True)
        self._thread.start()

    def result(self) -> _T:
        """The call's value (waiting for it), or its exception raised here; the same on every call."""
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]
        return self._box["value"]


def start_in_fresh_thread(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> Pending[_T]:
    """Start ``fn(*args, **kwargs)`` in a new thread that ends when it returns (see :func:`in_fresh_thread`),
    and go on: for loading that can overlap other start-up work.

    The call must not import modules: an import in a second thread while the first imports too
    can fail (torch raised "dictionary changed size during iteration"), so import first, then start.
    """
    return Pending(fn, args, kwargs)
