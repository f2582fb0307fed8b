"""What the lab's route modules share: the lab state, the upload store, and calls that stream.

Generation goes through the server's model pool and PII guard (:meth:`LabState.call`);
``stream_call`` turns a capability's ``on_delta`` callback into server-sent events.
"""
from __future__ import annotations

from typing import Any

from fastapi import Request, UploadFile
from pydantic import BaseModel

from ..errors import error_event
from ..state import LabState
from ..streaming import SSEResponse, sse_event
from ..uploads import UploadStore

JOB_ACCEPTED = {202: {"description": "the job was queued; poll GET /lab/jobs/{id}"}}


def typed(model: type[BaseModel]) -> dict[str, Any]:
    """A route's documented success body: the route returns the capability's dict, FastAPI checks it
    against ``model``; keys the dict leaves out stay out (``events`` of a job, say) instead of ``null``."""
    return {"response_model": model, "response_model_exclude_unset": True}


def lab_state(request: Request) -> LabState:
    return request.app.state.lab


def uploads(lab: LabState) -> UploadStore:
    return UploadStore(lab.settings.home / "uploads", max_bytes=lab.server.max_upload_bytes,
                       allowed=lab.server.upload_types)


async def store_files(lab: LabState, files: list[UploadFile]) -> list[Any]:
    store = uploads(lab)
    out = []
    for f in files:
        out.append(await lab.run(store.store, f.file, f.filename or ""))
    return out


def with_guard(d: dict[str, Any], guarded: Any) -> dict[str, Any]:
    return {**d, "pii": guarded.report.to_dict()}


def stream_call(lab: LabState, model: str, key: str, fn: Any, final: Any) -> SSEResponse:
    """Run ``fn(model, on_delta)`` and stream its deltas as ``{"delta": …}`` events, then ``final(result)``."""
    import asyncio

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    gone = {"flag": False}

    class _ClientGone(Exception):
        pass

    def on_delta(text: str) -> None:
        if gone["flag"]:
            raise _ClientGone()  # unwinding closes the model's stream, which stops generating
        loop.call_soon_threadsafe(queue.put_nowait, ("delta", text))

    async def events():
        task = asyncio.ensure_future(lab.call(model, key, lambda m: fn(m, on_delta)))
        task.add_done_callback(lambda t: queue.put_nowait(("done", None)))
        while True:
            kind, value = await queue.get()
            if kind == "delta":
                yield sse_event({"delta": value})
                continue
            try:
                result, guarded = task.result()
            except Exception as e:  # reported in-band: the status line is sent already
                yield sse_event(error_event(e))
                return
            yield sse_event(with_guard(final(result), guarded))
            yield "data: [DONE]\n\n"
            return

    def close() -> None:
        gone["flag"] = True

    return SSEResponse(events(), on_close=close)

