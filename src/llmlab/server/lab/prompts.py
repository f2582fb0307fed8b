"""The prompt lab (``/lab/prompts/…``): the template library and grids run as resumable jobs."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ...errors import InvalidParameterError
from ...jobs import JobContext
from ..lab_schemas import GridRequest
from ..state import LabState
from .common import JOB_ACCEPTED, lab_state, typed
from .responses import JobInfo, TemplateLibrary

router = APIRouter()


@router.get("/prompts/library", **typed(TemplateLibrary))
async def prompt_library(request: Request) -> dict[str, Any]:
    from ...prompts import library

    items = await lab_state(request).run(library)
    return {"templates": [{"name": t.name, "description": getattr(t, "description", ""),
                           "variables": sorted(t.variables)} for t in items]}


class _PoolModel:
    """A pool model lent to the grid runner, which closes what it loads: closing gives it back."""

    def __init__(self, lab: LabState, name: str):
        self._lease = lab.pool.acquire(name)
        self._guarded = lab.guard(self._lease.model)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._guarded, name)

    def close(self) -> None:
        self._lease.release()


def _no_paths(data: dict[str, Any]) -> None:
    """Grid files name templates and inputs by path on the CLI; over HTTP only inline ones are taken."""
    for t in data.get("templates") or []:
        if isinstance(t, str) and ("/" in t or "\\" in t or t.endswith((".yaml", ".yml"))):
            raise InvalidParameterError(f"template {t!r}: the server takes built-in template names and inline "
                                        "templates, not file paths")
    if isinstance(data.get("inputs"), dict):
        raise InvalidParameterError("inputs: give the inputs inline (a list), not {file: …}")


@router.post("/prompts/grid", status_code=202, responses=JOB_ACCEPTED, **typed(JobInfo))
async def prompt_grid(body: GridRequest, request: Request) -> dict[str, Any]:
    """Run a grid (templates × models × params × inputs) as a job; cells are recorded and resumable."""
    from ...prompts.grid import expand, grid_from_dict

    lab = lab_state(request)
    _no_paths(body.grid)
    grid = grid_from_dict(body.grid, source="grid", base=lab.settings.home)
    n_cells = len(expand(grid))

    def run(ctx: JobContext) -> dict[str, Any]:
        from ...prompts.grid import run_grid

        def loader(entry: Any) -> Any:
            if entry.backend or entry.options:
                raise InvalidParameterError(f"model {entry.name!r}: backend and options are fixed by the server; "
                                            "name the model only")
            return _PoolModel(lab, entry.name)

        ctx.progress(0, n_cells, "running")
        res = run_grid(grid, ledger=lab.ledger(), loader=loader, fresh=body.fresh,
                       progress=lambda done, total, cell: ctx.progress(done, total, cell.cell.variant.label))
        return res.to_dict()

    return lab.jobs.submit("grid", run, {"grid": grid.name, "cells": n_cells}).to_dict()
