"""Showing errors and progress in the browser: llmlab errors become Gradio toasts.

A capability raises :class:`~llmlab.errors.LLMLabError` with a message that says what to do
next; the UI shows that message instead of a stack trace. Callbacks that report through a
function (``log_line=``, ``on_delta=``) are run in a thread so their output can stream.
"""
from __future__ import annotations

import contextvars
import functools
import inspect
import queue
import threading
from typing import Any, Callable, Iterator

from ..errors import LLMLabError


def _toast(e: LLMLabError) -> Exception:
    import gradio as gr

    return gr.Error(str(e), print_exception=False)


def user_errors(fn: Callable) -> Callable:
    """Turn :class:`LLMLabError` from ``fn`` (a function or a generator) into a Gradio error toast."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except LLMLabError as e:
                raise _toast(e) from None

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except LLMLabError as e:
            raise _toast(e) from None

    return wrapper


_DONE = object()


def updates(fn: Callable[[Callable[[Any], None]], Any]) -> Iterator[tuple[str, Any]]:
    """Run ``fn(report)`` in a thread; yield ``("update", item)`` per ``report(item)``, then ``("done", result)``.

    An exception ``fn`` raised is re-raised here, in the caller's thread.
    """
    q: queue.Queue = queue.Queue()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn(q.put)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread below
            box["error"] = e
        finally:
            q.put(_DONE)

    # the thread runs in this event's context: whose records it writes, which key is signed in
    threading.Thread(target=contextvars.copy_context().run, args=(target,), name="llmlab-webui-job",
                     daemon=True).start()
    while (item := q.get()) is not _DONE:
        yield "update", item
    if "error" in box:
        raise box["error"]
    yield "done", box.get("result")
