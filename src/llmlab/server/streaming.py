"""Bridging blocking generation to asyncio: admission, async streams, server-sent events.

Models generate in threads (the llama.cpp scheduler owns its own decode thread; readers
wait on a queue), so each request pulls its stream from a worker thread. Three rules
keep the server bounded and honest:

* :class:`Admission` caps generation requests in flight; past the cap a request gets
  429 with ``Retry-After`` at once instead of queueing without limit.
* :class:`AsyncStream` closes the model's stream when the reader goes away — right away
  if no step is running, else as soon as the running step returns (a generator cannot
  be closed while another thread is inside it).
* :class:`SSEResponse` watches for the client's disconnect while it streams and runs its
  cleanup exactly once, however the response ends.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import logging
import threading
from typing import Any, AsyncIterator, Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import BusyError

log = logging.getLogger(__name__)

_END = object()


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


class AsyncStream:
    """Pull a blocking iterator (a model stream) from worker threads, one item at a time."""

    def __init__(self, stream: Any, executor: concurrent.futures.Executor):
        self._stream = stream
        self._it = iter(stream)
        self._executor = executor
        self._pending: concurrent.futures.Future | None = None
        self.finished = False
        self.closed = False

    @property
    def source(self) -> Any:
        """The blocking stream being read (its ``completion`` is set once it is consumed)."""
        return self._stream

    def _step(self) -> Any:
        try:
            return next(self._it)
        except StopIteration:
            return _END

    async def next(self) -> Any | None:
        """The next item, or None at the end."""
        if self.finished or self.closed:
            return None
        cf = self._executor.submit(contextvars.copy_context().run, self._step)
        self._pending = cf
        item = await asyncio.wrap_future(cf)
        self._pending = None
        if item is _END:
            self.finished = True
            return None
        return item

    def __aiter__(self) -> "AsyncStream":
        return self

    async def __anext__(self) -> Any:
        item = await self.next()
        if item is None:
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        """Stop generating (idempotent)."""
        if self.finished or self.closed:
            return
        self.closed = True
        cf = self._pending
        if cf is None:
            self._close_stream()
        else:  # runs now if the step is done, else in the worker thread when it returns
            cf.add_done_callback(lambda _: self._close_stream())

    def _close_stream(self) -> None:
        try:
            self._stream.close()
        except Exception:  # pragma: no cover - closing must never raise into the server
            log.exception("closing a stream failed")


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
