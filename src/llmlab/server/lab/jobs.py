"""Background jobs (``/lab/jobs…``): list, poll, stream as server-sent events, stop."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from ..auth import admin_only
from ..streaming import SSE_DOC, SSEResponse, sse_event
from .common import lab_state, typed
from .responses import JobInfo, JobList

router = APIRouter()


@router.get("/jobs", **typed(JobList))
async def jobs(request: Request, kind: str | None = Query(None, max_length=40)) -> dict[str, Any]:
    return {"jobs": [j.to_dict() for j in lab_state(request).jobs.list(kind)]}


@router.get("/jobs/{job_id}", **typed(JobInfo))
async def job(job_id: str, request: Request, events: bool = False,
              since: int = Query(0, ge=0, description="with events=true: only the events after this seq"),
              ) -> dict[str, Any]:
    """A job's status, progress, result or error (``events=true`` adds its events, e.g. loss points)."""
    return lab_state(request).jobs.get(job_id).to_dict(events=events, since=since)


@router.get("/jobs/{job_id}/events", status_code=200, response_class=SSEResponse, responses={200: SSE_DOC})
async def job_events(job_id: str, request: Request,
                     since: int = Query(0, ge=0, description="skip the events up to this seq")) -> SSEResponse:
    """The job as server-sent events: one per change, each with the events (loss points) new since the last."""
    lab = lab_state(request)
    lab.jobs.get(job_id)  # 404 now, not mid-stream

    async def stream():
        seen = since
        async for j in lab.jobs.watch(job_id):
            d = j.to_dict(events=True, since=seen)
            if d["events"]:
                seen = d["events"][-1]["seq"]
            yield sse_event(d)
        yield "data: [DONE]\n\n"

    return SSEResponse(stream())


@router.post("/jobs/{job_id}/stop", dependencies=[Depends(admin_only)], **typed(JobInfo))
async def stop_job(job_id: str, request: Request) -> dict[str, Any]:
    """Ask a job to stop. Most stop at their next progress report (``cancelled``); fine-tuning
    finishes its running step, saves a checkpoint and the model, and ends ``stopped``."""
    return lab_state(request).jobs.stop(job_id).to_dict()
