"""Models (``/lab/models…``): what this machine can use, whether one fits, pulling and loading."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from ...jobs import JobContext
from ..auth import admin_only
from ..lab_schemas import ModelRequest, PullRequest
from .common import JOB_ACCEPTED, lab_state, typed
from .responses import FitEstimate, JobInfo, Loaded, ModelListing

router = APIRouter()


@router.get("/models", **typed(ModelListing))
async def lab_models(request: Request) -> dict[str, Any]:
    """Every model this machine can use (bundled, local, cached, API), and which are loaded."""
    from ...models.listing import list_models

    lab = lab_state(request)
    entries = await lab.run(list_models, lab.settings)
    return {"models": [e.to_dict() for e in entries], "loaded": lab.pool.loaded()}


@router.get("/models/fit", **typed(FitEstimate))
async def lab_fit(request: Request, model: str = Query(min_length=1, max_length=512),
                  context: int | None = Query(None, ge=16, le=1_048_576),
                  load_in: Literal["4bit", "8bit"] | None = None, quant: str | None = Query(None, max_length=40),
                  train: Literal["lora", "qlora", "full"] | None = None) -> dict[str, Any]:
    """Whether a model fits this machine's memory, estimated before loading anything."""
    from ...models.fit import estimate_fit
    from ..pool import check_model_name

    check_model_name(model)
    lab = lab_state(request)
    report = await lab.run(lambda: estimate_fit(model, settings=lab.settings, context=context, load_in=load_in,
                                                quant=quant, train=train))
    return report.to_dict()


@router.post("/models/pull", status_code=202, responses=JOB_ACCEPTED, dependencies=[Depends(admin_only)],
             **typed(JobInfo))
async def lab_pull(body: PullRequest, request: Request) -> dict[str, Any]:
    """Download a model into the local cache (a background job; needs network)."""
    lab = lab_state(request)

    def run(ctx: JobContext) -> dict[str, Any]:
        from ...models.pull import pull

        return pull(body.model, quant=body.quant, progress=False, settings=lab.settings,
                    log_line=lambda line: ctx.progress(message=line)).to_dict()

    return lab.jobs.submit("pull", run, {"model": body.model, "quant": body.quant}).to_dict()


@router.post("/models/load", dependencies=[Depends(admin_only)], **typed(Loaded))
async def lab_load(body: ModelRequest, request: Request) -> dict[str, Any]:
    """Load a model now (instead of on its first request)."""
    lab = lab_state(request)
    lease = await lab.run(lab.pool.acquire, body.model)
    lease.release()
    return {"loaded": lab.pool.loaded()}
