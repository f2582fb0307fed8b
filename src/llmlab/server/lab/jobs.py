"""Background jobs (``/lab/jobs…``): list, poll, stream as server-sent events, stop.

A job belongs to the key that started it: a ``user`` key sees and stops only its own (another's
answers 404, as if it did not exist), an ``admin`` key all of them; without keys, everyone is admin.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from ..auth import caller, owner_filter
from ..keys import Principal
from ..streaming import SSE_DOC, SSEResponse, sse_event
from .common import lab_state, typed
from .responses import JobInfo, JobList

router = APIRouter()


@router.get("/jobs", **typed(JobList))
async def jobs(request: Request, kind: str | None = Query(None, max_length=40),
               who: Principal = Depends(caller)) -> dict[str, Any]:
    """Jobs, newest first (a user key: the ones it started)."""
    return {"jobs": [j.to_dict() for j in lab_state(request).jobs.list(kind, owner=owner_filter(who))]}


@router.get("/jobs/{job_id}", **typed(JobInfo))
async def job(job_id: str, request: Request, events: bool = False,
              since: int = Query(0, ge=0, description="with events=true: only the events after this seq"),
              who: Principal = Depends(caller)) -> dict[str, Any]:
    """A job's status, progress, result or error (``events=true`` adds its events, e.g. loss points)."""
    return lab_state(request).jobs.get(job_id, owner=owner_filter(who)).to_dict(events=events, since=since)


@router.get("/jobs/{job_id}/events", status_code=200, response_class=SSEResponse, responses={200: SSE_DOC})
async def job_events(job_id: str, request: Request,
                     since: int = Query(0, ge=0, description="skip the events up to this seq"),
                     who: Principal = Depends(caller)) -> SSEResponse:
    """The job as server-sent events: one per change, each with the events (loss points) new since the last."""
    lab = lab_state(request)
    lab.jobs.get(job_id, owner=owner_filter(who))  # 404 now, not mid-stream

    async def stream():
        seen = since
        async for j in lab.jobs.watch(job_id):
            d = j.to_dict(events=True, since=seen)
            if d["events"]:
                seen = d["events"][-1]["seq"]
            yield sse_event(d)
        yield "data: [DONE]\n\n"

    return SSEResponse(stream())


@router.post("/jobs/{job_id}/stop", **typed(JobInfo))
async def stop_job(job_id: str, request: Request, who: Principal = Depends(caller)) -> dict[str, Any]:
    """Ask a job to stop (a user key: one it started). Most stop at their next progress report
    (``cancelled``); fine-tuning finishes its running step, saves a checkpoint and the model, and ends ``stopped``."""
    return lab_state(request).jobs.stop(job_id, owner=owner_filter(who)).to_dict()
