"""A fine-tuning run as a background job: live loss points, a clean stop, the adapter kept.

:func:`finetune_job` wraps :func:`llmlab.finetune.train.train` (``llmlab finetune``) for
the :class:`~llmlab.jobs.JobManager`. Each status line the trainer prints becomes an event
``{"message"}``; each logged step an event ``{"step", "max_steps", "epoch", "loss", "lr",
"tokens_per_s"}`` (``eval_loss`` at evaluations) and the job's progress. The job is
*graceful*: a stop request is seen after the running step, which is logged and
checkpointed, the model is saved and the job ends ``stopped`` with its result. The HTTP
route and the web UI's Fine-tuning screen both start training through this function.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..jobs import Job, JobContext, JobManager

KIND = "finetune"


def finetune_job(config: Any, settings: Any, *, out_root: str | Path | None = None) -> Callable[[JobContext], Any]:
    """``run(ctx)`` for :meth:`JobManager.submit`; an empty ``config.out`` becomes ``out_root/<job id>``."""

    def run(ctx: JobContext) -> dict[str, Any]:
        from .train import train

        if not config.out:
            if out_root is None:
                raise ValueError("finetune_job: give config.out or out_root")
            config.out = str(Path(out_root) / ctx.job_id)

        def on_log(point: dict[str, Any]) -> None:
            ctx.event(**point)
            if "loss" in point:
                ctx.progress(point["step"], point.get("max_steps") or None,
                             f"step {point['step']}: loss {point['loss']:.4f}",
                             **{k: point[k] for k in ("step", "loss", "lr", "epoch") if k in point})

        ctx.progress(0, config.max_steps, "preparing", out=config.out)
        result = train(config, settings=settings, progress=False, echo=lambda line: ctx.event(message=line),
                       on_log=on_log, should_stop=lambda: ctx.cancelled)
        ctx.event(message=f"{'stopped' if result.stopped else 'done'}: {result.steps} steps, "
                          f"loss {result.train_loss_first} → {result.train_loss_last} → {result.out}")
        return {**result.to_dict(), "losses": [list(p) for p in result.losses]}

    return run


def start_finetune(jobs: JobManager, config: Any, settings: Any, *, out_root: str | Path | None = None) -> Job:
    """Queue a fine-tuning job (graceful: a stop keeps what was trained)."""
    return jobs.submit(KIND, finetune_job(config, settings, out_root=out_root),
                       {"base": config.base, "method": config.method, "out": config.out or None}, graceful=True)


def loss_points(job: Job) -> list[dict[str, Any]]:
    """The training-loss points a job has reported so far (oldest first)."""
    return [e for e in job.events_since(0) if "loss" in e]


def log_lines(job: Job) -> list[str]:
    """The status lines a job has reported so far."""
    return [e["message"] for e in job.events_since(0) if "message" in e]
