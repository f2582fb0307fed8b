"""Fine-tuning (``/lab/finetune/…``): the data check on an upload, and training as a job."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from ..auth import admin_only
from ..lab_schemas import FinetuneCheckRequest, FinetuneRequest
from .common import JOB_ACCEPTED, lab_state, typed, uploads
from .responses import DataCheck, JobInfo

router = APIRouter()


@router.post("/finetune/check", **typed(DataCheck))
async def finetune_check(body: FinetuneCheckRequest, request: Request) -> dict[str, Any]:
    """The data check (``llmlab data check``) on an uploaded dataset."""
    from ...finetune.lint import lint

    lab = lab_state(request)
    path = str(uploads(lab).path(body.upload_id))
    report = await lab.run(lambda: lint(path, format=body.format, base=body.base, max_seq_len=body.max_seq_len,
                                        settings=lab.settings))
    return report.to_dict()


@router.post("/finetune/jobs", status_code=202, responses=JOB_ACCEPTED, dependencies=[Depends(admin_only)],
             **typed(JobInfo))
async def finetune_start(body: FinetuneRequest, request: Request) -> dict[str, Any]:
    """Start a fine-tuning job. Its loss points (step, loss, lr, epoch) are the job's events:
    poll ``GET /lab/jobs/{id}?events=true&since=N`` or stream ``/lab/jobs/{id}/events``;
    ``POST /lab/jobs/{id}/stop`` ends it after the running step, keeping a checkpoint and the model."""
    from ...finetune.config import TrainConfig
    from ...finetune.job import start_finetune

    lab = lab_state(request)
    store = uploads(lab)
    config = TrainConfig(train=str(store.path(body.upload_id)), base=body.base, out="", method=body.method,
                         eval=str(store.path(body.eval_upload_id)) if body.eval_upload_id else None,
                         max_steps=body.max_steps, epochs=body.epochs, lr=body.lr, batch_size=body.batch_size,
                         max_seq_len=body.max_seq_len, lora_r=body.lora_r)
    return start_finetune(lab.jobs, config, lab.settings, out_root=lab.settings.home / "finetune").to_dict()
