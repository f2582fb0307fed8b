"""Bridging blocking generation to asyncio: admission, async streams, server-sent events.

Models generate in threads (the llama.cpp scheduler owns its own decode thread; readers
wait on a queue), so each request pulls its stream from a worker thread. Three rules
keep the server bounded and honest:

* :class:`Admission` caps generation requests in flight; past the cap a request gets
  429 with ``Retry-After`` at once instead of queueing without limit.
* :class:`AsyncStream` reads each stream in one worker thread and hands the event loop
  what it produced, in batches; it closes the model's stream when the reader goes away —
  right away if no step is running, else as soon as the running step returns (a generator
  cannot be closed while another thread is inside it).
* :class:`SSEResponse` watches for the client's disconnect while it streams and runs its
  cleanup exactly once, however the response ends.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import json
import logging
import threading
from collections import deque
from typing import Any, AsyncIterator, Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import BusyError
from ..models.streaming import Reader, reading
from ..types import HANDOFF, PENDING

log = logging.getLogger(__name__)

_END = object()
_TO_LOOP = object()  # the worker's last item when the stream goes on without blocking: the loop reads it now


class Admission:
    """At most ``limit`` generation requests in flight."""

    def __init__(self, limit: int, retry_after_s: float = 2.0):
        self.limit = limit
        self.retry_after_s = retry_after_s
        self._n = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._n

    def enter(self) -> None:
        with self._lock:
            if self._n >= self.limit:
                raise BusyError(f"the server is busy ({self._n} requests in flight, the limit is {self.limit}); "
                                "try again shortly", retry_after_s=self.retry_after_s)
            self._n += 1

    def exit(self) -> None:
        with self._lock:
            self._n = max(0, self._n - 1)


async def run_blocking(executor: concurrent.futures.Executor, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` in ``executor`` and await it, in a copy of this context (e.g. whose records it writes)."""
    return await asyncio.wrap_future(executor.submit(contextvars.copy_context().run, fn, *args))


class _Failure:
    """An exception raised by the stream, carried to the event loop in order with the items."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


class AsyncStream:
    """Read a blocking iterator (a model stream) for the event loop.

    One executor job pumps the stream (not one job per item): the worker appends every item
    to a buffer and wakes the event loop only when it is waiting, and pieces that arrive while
    the loop is busy (eight streams at once) are taken together by :meth:`next_batch` and sent
    in one write.

    With ``on_loop=True`` a local stream that knows readers (llama.cpp, the fake) is read on
    the event loop itself once it has started: the worker makes the first step (prompt,
    template, submitting the request) inside :func:`~llmlab.models.streaming.reading`; from
    then on the decode thread wakes the loop when a token is ready and the loop advances the
    stream, which yields ``PENDING`` instead of waiting. So a streamed token wakes one thread
    (the loop), not two (a worker, then the loop). At ``HANDOFF`` (the end, whose bookkeeping
    may block: the ledger's record) a worker reads the rest. Other streams are pumped by the
    worker throughout.
    """

    def __init__(self, stream: Any, executor: concurrent.futures.Executor, *, on_loop: bool = False):
        self._stream = stream
        self._iter: Any = None  # iter(stream), made by the first reader
        self._executor = executor
        self._lock = threading.Lock()
        self._buffer: deque[Any] = deque()  # filled by the worker, emptied by the loop (under _lock)
        self._waiter: asyncio.Future | None = None  # the loop waits on it while it has nothing to take
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: deque[Any] = deque()  # taken from the buffer, not yet returned by next()
        self._reader = Reader(self._signal) if on_loop else None
        self._on_loop = False  # the loop advances the stream itself (a worker handed it over)
        self._signalled = False  # the decode thread readied something since the loop last advanced
        self._running = False  # a worker is inside the stream
        self._stop = False  # close() was called: the worker stops after the item it is waiting for
        self.finished = False
        self.closed = False

    @property
    def source(self) -> Any:
        """The blocking stream being read (its ``completion`` is set once it is consumed)."""
        return self._stream

    @property
    def read_on_loop(self) -> bool:
        """Whether the stream took the loop as its reader (see the class docstring)."""
        return self._reader is not None and self._reader.attached

    # -- the worker thread ---------------------------------------------------------------------------
    def _pump(self, first: bool) -> None:
        try:
            if self._iter is None:
                self._iter = iter(self._stream)
            with reading(self._reader) if first and self._reader is not None else contextlib.nullcontext():
                for item in self._iter:
                    if item is HANDOFF:
                        continue
                    if item is PENDING:  # the stream reads without blocking now: the loop takes it over
                        self._deliver(_TO_LOOP)
                        return
                    if self._stop:
                        break
                    self._deliver(item)
                else:
                    self._deliver(_END)
        except BaseException as e:  # handed to the reader, raised there
            self._deliver(_Failure(e))
        finally:
            with self._lock:
                self._running = False
                stop = self._stop
            if stop:  # the reader left while a step was running: stop generating now
                self._close_stream()

    def _deliver(self, item: Any) -> None:
        with self._lock:
            self._buffer.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(_wake, waiter)

    # -- the decode thread (a stream read on the loop) -------------------------------------------------
    def _signal(self) -> None:
        with self._lock:
            self._signalled = True
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(_wake, waiter)

    # -- the event loop ------------------------------------------------------------------------------
    def _start_worker(self, first: bool) -> None:
        assert self._loop is not None
        self._running = True
        try:
            self._executor.submit(contextvars.copy_context().run, self._pump, first)
        except BaseException:
            self._running = False
            raise

    def _advance(self) -> None:
        """Advance the stream on the loop until it has nothing ready (it never blocks here)."""
        while True:
            with self._lock:
                self._signalled = False
            try:
                item = next(self._iter)
            except StopIteration:
                self._ready.append(_END)
                return
            except BaseException as e:
                self._ready.append(_Failure(e))
                return
            if item is PENDING:
                return
            if item is HANDOFF:  # the rest may block: a worker reads it
                self._on_loop = False
                self._start_worker(first=False)
                return
            self._ready.append(item)

    async def _fill(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._start_worker(first=True)
        while True:
            if self._on_loop:
                self._advance()
                if self._ready:
                    return
                if self._on_loop:
                    with self._lock:
                        if self._signalled:  # readied while the stream was being advanced
                            continue
                        waiter = self._waiter = self._loop.create_future()
                    await waiter
                    continue
            with self._lock:
                if self._buffer:
                    items = list(self._buffer)
                    self._buffer.clear()
                else:
                    items = None
                    waiter = self._waiter = self._loop.create_future()
            if items is None:
                await waiter
                continue
            for item in items:
                if item is _TO_LOOP:
                    self._on_loop = True
                else:
                    self._ready.append(item)
            if self._ready:
                return

    def _take(self) -> Any:
        item = self._ready.popleft()
        if item is _END:
            self.finished = True
            return None
        if isinstance(item, _Failure):
            self.finished = True
            raise item.error
        return item

    async def next(self) -> Any | None:
        """The next item, or None at the end."""
        if self.finished or self.closed:
            return None
        if not self._ready:
            await self._fill()
        return self._take()

    async def next_batch(self) -> list[Any]:
        """Every item produced so far (waiting for at least one); empty at the end.

        An error raised by the stream comes after the items that preceded it."""
        if self.finished or self.closed:
            return []
        if not self._ready:
            await self._fill()
        out = []
        while self._ready and not self.finished:
            if out and isinstance(self._ready[0], _Failure):
                break  # return the items first; the error comes with the next call
            item = self._take()
            if item is not None:
                out.append(item)
        return out

    def __aiter__(self) -> "AsyncStream":
        return self

    async def __anext__(self) -> Any:
        item = await self.next()
        if item is None:
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        """Stop generating (idempotent): at once, or when the worker's running step returns
        (a generator cannot be closed while another thread is inside it)."""
        if self.finished or self.closed:
            return
        self.closed = True
        with self._lock:
            self._stop = True
            running = self._running
        if not running:
            self._close_stream()

    def _close_stream(self) -> None:
        try:
            if self._iter is not None and hasattr(self._iter, "close"):
                self._iter.close()  # the generator being read (its wrappers' cleanup runs)
            self._stream.close()
        except Exception:  # pragma: no cover - closing must never raise into the server
            log.exception("closing a stream failed")


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


def sse_event(obj: Any) -> str:
    """One server-sent event carrying ``obj`` as JSON (UTF-8, not ASCII-escaped)."""
    return f"data: {json.dumps(obj, ensure_ascii=False, separators=(',', ':'))}\n\n"


SSE_DONE = "data: [DONE]\n\n"

#: how routes document a text/event-stream answer (OpenAPI 3.1: the schema describes one event)
SSE_DOC = {"content": {"text/event-stream": {
    "schema": {"type": "object", "required": ["data"],
               "properties": {"data": {"type": "string", "description": "one JSON object, or [DONE] at the end"},
                              "event": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"}}},
    "description": "server-sent events"}}}


class SSEResponse(Response):
    """A ``text/event-stream`` response that stops when the client disconnects.

    ``events`` yields already formatted events; ``on_close`` runs once at the end
    whatever happened (finished, client gone, error).
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[str], on_close: Callable[[], None] | None = None,
                 headers: dict[str, str] | None = None):
        # no Response.__init__: it would declare Content-Length: 0 for the empty body
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})})
        self.events = events
        self.on_close = on_close
        self._closed = False

    def _cleanup(self) -> None:
        if not self._closed:
            self._closed = True
            if self.on_close is not None:
                self.on_close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def pump() -> None:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self.events:
                await send({"type": "http.response.body", "body": chunk.encode("utf-8"), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return

        pump_task = asyncio.ensure_future(pump())
        watch_task = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({pump_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
            if watch_task.done() and not pump_task.done():
                log.info("client disconnected mid-stream; stopping its generation")
        finally:
            self._cleanup()  # closes the model stream first, so a blocked step returns soon
            for t in (pump_task, watch_task):
                t.cancel()
            await asyncio.gather(pump_task, watch_task, return_exceptions=True)
            aclose = getattr(self.events, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:  # pragma: no cover
                    log.exception("closing the event stream failed")
        if pump_task.done() and not pump_task.cancelled() and pump_task.exception() is not None:
            exc = pump_task.exception()
            if not isinstance(exc, OSError):  # a vanished client is not an error
                log.error("streaming failed: %s", exc)
