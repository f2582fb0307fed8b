"""The lab's own endpoints (``/lab/…``), one module per resource, gathered into one router.

Each route is a thin call into the same capability functions the CLI uses — nothing here
decides how to retrieve, summarise or train. Generation goes through the server's model
pool and PII guard (:meth:`LabState.call`). Long work (ingesting, grids, pulls, training)
runs as a background job: the route answers 202 with the job, which clients poll at
``GET /lab/jobs/{id}`` or stream at ``GET /lab/jobs/{id}/events``.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends

from ..auth import api_key
from ..params import known_query_only
from . import finetune, jobs, ledger, models, prompts, rag, tasks, uploads

#: the resources in the order their operations appear in ``/openapi.json``
RESOURCES = (uploads, rag, tasks, prompts, finetune, models, ledger, jobs)

router = APIRouter(prefix="/lab", dependencies=[Depends(api_key), Depends(known_query_only)], tags=["lab"])
for _resource in RESOURCES:
    router.include_router(_resource.router)

__all__ = ["router", "RESOURCES"]
