"""What one server instance holds (on ``app.state.lab``) and how a generation starts and ends.

:class:`LabState` owns the model pool, the worker threads, admission, the cost guard,
background jobs and loaded embedders. :meth:`LabState.generation` is the single path every
generating route takes: admit → lease the model → apply the PII policy and the budget →
start the stream → wait for its first piece (so a busy queue, an overlong prompt or a
blocked request become proper HTTP errors before any byte is sent) → on close, charge the
cost and give everything back exactly once.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..config import Settings
from ..guard.budget import CostGuard
from ..guard.policy import GuardedModel
from ..types import Completion, Delta
from ..jobs import JobManager
from .pool import Lease, ModelPool
from .settings import ServerSettings
from .streaming import Admission, AsyncStream, run_blocking

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"


@dataclass
class Generation:
    """A started generation: its model lease, guard, async stream and first item."""

    state: "LabState"
    lease: Lease
    guarded: GuardedModel
    stream: AsyncStream
    key_id: str
    first: Delta | None = None
    clock: Any = None  # a metrics.Clock timing the streamed pieces
    _done: bool = field(default=False, repr=False)

    @property
    def model(self) -> Any:
        return self.lease.model

    @property
    def completion(self) -> Completion | None:
        return self.stream.source.completion

    async def deltas(self):
        """Every delta, starting with the one already fetched."""
        async for batch in self.delta_batches():
            for d in batch:
                yield d

    async def delta_batches(self):
        """The deltas in the batches they became ready in (several when the reader fell behind),
        starting with the one already fetched; a streaming response writes each batch at once."""
        if self.first is not None:
            first, self.first = self.first, None
            yield [first]
        while True:
            batch = await self.stream.next_batch()
            if not batch:
                return
            if self.clock is not None:
                for _ in batch:
                    self.clock.piece()
            yield batch

    async def collect(self) -> Completion:
        """Consume the rest and return the (unmasked) completion."""
        async for _ in self.deltas():
            pass
        c = self.completion
        assert c is not None
        return c

    def pii_headers(self) -> dict[str, str]:
        r = self.guarded.report
        h = {"X-LLMLab-PII-Policy": r.policy}
        if r.found:
            h["X-LLMLab-PII"] = ",".join(r.types)
        return h

    def close(self) -> None:
        """Stop generating if still running, charge what it cost, release model and slot (once)."""
        if self._done:
            return
        self._done = True
        self.stream.close()
        c = self.completion
        if c is not None:
            self.state.charge(self.key_id, self.model, c)
            self.state.metrics.usage(self.lease.name, c.usage.prompt_tokens, c.usage.completion_tokens)
        self.lease.release()
        self.state.admission.exit()


class LabState:
    """Everything a running server holds; created by :func:`~llmlab.server.app.create_app`.

    It is also the web UI's ``Lab`` (``settings``, ``ledger()``, ``use(name)``, ``loaded()``,
    ``unload(name)``), so the UI and the API share loaded models and the PII guard.
    """

    def __init__(self, server: ServerSettings, settings: Settings, pool: ModelPool):
        self.server = server
        self.settings = settings
        self.pool = pool
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.admission = Admission(server.max_concurrent_requests)
        self.cost_guard = CostGuard(settings.home / "server" / "spend.db", server.daily_budget_usd)
        self.jobs = JobManager(server.max_jobs)
        self._embedders: dict[str, Any] = {}
        self._embedder_lock = threading.Lock()
        self._ledger: Any = None
        #: serving: set once the preloaded models answer, cleared when shutdown begins (/health/ready)
        self.ready = False
        from .metrics import ServerMetrics  # (metrics → auth → state: imported here, not at the top)

        self.metrics = ServerMetrics(self, list(server.models) or [settings.default_model])

    # -- life cycle --------------------------------------------------------------------------------
    @property
    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        """One thread per stream being read, plus room for blocking calls (tasks, loading, ledger)."""
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.server.max_concurrent_requests + 16, thread_name_prefix="llmlab-serve")
            return self._executor

    def start(self) -> None:
        """(Re)open what :meth:`close` released — an app may run its lifespan more than once (tests)."""
        self.pool.reopen()

    def close(self) -> None:
        """Stop jobs, close models, threads and the ledger."""
        self.jobs.shutdown()
        self.pool.close()
        self.cost_guard.close()
        with self._lock:
            executor, self._executor = self._executor, None
            ledger, self._ledger = self._ledger, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if ledger is not None:
            ledger.close()

    # -- helpers the routes share ----------------------------------------------------------------
    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await run_blocking(self.executor, fn, *args)

    def guard(self, model: Any) -> GuardedModel:
        return GuardedModel(model, self.server.pii_policy_for(model.backend.name))

    def paid(self, model: Any) -> bool:
        from ..models import pricing

        return model.backend.capabilities.remote and pricing.price_for(model.spec.remote_model, model.spec.price) is not None

    def check_budget(self, key_id: str, model: Any) -> None:
        if self.paid(model):
            self.cost_guard.check(key_id)

    def charge(self, key_id: str, model: Any, c: Completion) -> None:
        if not self.paid(model):
            return
        from ..models import pricing

        price = pricing.price_for(model.spec.remote_model, model.spec.price)
        self.cost_guard.charge(key_id, pricing.cost_usd(model.backend.name, c.usage.prompt_tokens,
                                                        c.usage.completion_tokens, price))

    async def generation(self, model_name: str, key_id: str, start: Callable[[GuardedModel], Any]) -> Generation:
        """Start ``start(guarded_model)`` (which returns a stream) and fetch its first delta."""
        from .metrics import Clock

        clock = Clock(self.metrics, model_name)  # time to first token counts from here
        self.admission.enter()
        lease: Lease | None = None
        gen: Generation | None = None
        try:
            lease = await self.run(self.pool.acquire, model_name)
            self.check_budget(key_id, lease.model)
            guarded = self.guard(lease.model)
            stream = await self.run(start, guarded)
            gen = Generation(self, lease, guarded, AsyncStream(stream, self.executor, on_loop=True), key_id,
                             clock=clock)
            gen.first = await gen.stream.next()
            if gen.first is not None:
                clock.piece()
            return gen
        except BaseException:
            if gen is not None:
                gen.close()
            else:
                if lease is not None:
                    lease.release()
                self.admission.exit()
            raise

    async def call(self, model_name: str, key_id: str, fn: Callable[[GuardedModel], Any]) -> tuple[Any, GuardedModel]:
        """Run a blocking capability (a task, a RAG answer) on a leased, guarded model."""
        self.admission.enter()
        try:
            lease = await self.run(self.pool.acquire, model_name)
            try:
                self.check_budget(key_id, lease.model)
                guarded = self.guard(lease.model)
                result = await self.run(fn, guarded)
                for c in _completions(result):
                    self.charge(key_id, lease.model, c)
                    self.metrics.usage(model_name, c.usage.prompt_tokens, c.usage.completion_tokens)
                return result, guarded
            finally:
                lease.release()
        finally:
            self.admission.exit()

    # -- embedders and the ledger ----------------------------------------------------------------------
    def embedder(self, spec: str) -> Any:
        """A loaded embedder, shared between requests (loaded once, calls serialized)."""
        with self._embedder_lock:
            e = self._embedders.get(spec)
            if e is None:
                from ..rag.embedders import load_embedder

                e = self._embedders[spec] = _SerializedEmbedder(load_embedder(spec))
            return e

    def loaded_embedders(self) -> list[str]:
        with self._embedder_lock:
            return sorted(self._embedders)

    def ledger(self) -> Any:
        """The run ledger, or None when recording is off."""
        if not self.settings.ledger:
            return None
        with self._lock:
            if self._ledger is None:
                from ..ledger import open_ledger

                self._ledger = open_ledger(self.settings)
            return self._ledger

    # -- the web UI's Lab seam ---------------------------------------------------------------------
    @contextlib.contextmanager
    def use(self, name: str | None) -> Iterator[GuardedModel]:
        """A pooled model behind the PII guard, for the ``with`` block (loads on first use)."""
        lease = self.pool.acquire(name or self.settings.default_model)
        try:
            yield self.guard(lease.model)
        finally:
            lease.release()

    def loaded(self) -> list[dict[str, Any]]:
        return self.pool.loaded()

    def unload(self, name: str) -> bool:
        return self.pool.unload(name)



def _completions(result: Any) -> list[Completion]:
    if isinstance(result, Completion):
        return [result]
    return list(getattr(result, "completions", None) or [])


class _SerializedEmbedder:
    """An embedder whose calls run one at a time (runtimes are not all thread-safe)."""

    def __init__(self, embedder: Any):
        self._e = embedder
        self._lock = threading.Lock()
        self.name, self.dim, self.max_tokens = embedder.name, embedder.dim, embedder.max_tokens

    @property
    def inner(self) -> Any:
        return self._e

    def embed_documents(self, texts):
        with self._lock:
            return self._e.embed_documents(texts)

    def embed_query(self, text):
        with self._lock:
            return self._e.embed_query(text)

    def count_tokens(self, text):
        with self._lock:
            return self._e.count_tokens(text)
