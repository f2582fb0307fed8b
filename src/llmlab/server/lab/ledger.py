"""The run ledger over HTTP (``/lab/logs``, ``/lab/usage``): recorded runs, usage and purging.

A user key sees and deletes only its own records; an admin key everyone's.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from ...errors import InvalidParameterError
from ..auth import caller, owner_filter
from ..keys import Principal
from ..lab_schemas import PurgeRequest
from ..state import LabState
from .common import lab_state, typed
from .responses import Purged, RunList, UsageReport

router = APIRouter()


def _check_date(name: str, value: str | None) -> None:
    from datetime import datetime

    if value is not None:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            err = InvalidParameterError(f"{name}={value!r}: use YYYY-MM-DD or an ISO timestamp")
            err.param = name  # type: ignore[attr-defined]
            raise err from None


def _ledger(lab: LabState) -> Any:
    ledger = lab.ledger()
    if ledger is None:
        from ...errors import ConfigError

        raise ConfigError("the run ledger is off on this server (ledger = false in the lab's settings)")
    return ledger


@router.get("/logs", **typed(RunList))
async def logs(request: Request, limit: int = Query(20, ge=1, le=1000), kind: str | None = Query(None, max_length=40),
               model: str | None = Query(None, max_length=512), session: str | None = Query(None, max_length=200),
               experiment: str | None = Query(None, max_length=200),
               search: str | None = Query(None, max_length=200), who: Principal = Depends(caller)) -> dict[str, Any]:
    """Recorded runs, newest first (``search`` looks in prompts and outputs); a user key sees only its own."""
    lab = lab_state(request)
    runs = await lab.run(lambda: _ledger(lab).runs(limit, kind=kind, model=model, session=session,
                                                 experiment=experiment, search=search, owner=owner_filter(who)))
    return {"runs": [r.to_dict() for r in runs]}


@router.get("/usage", **typed(UsageReport))
async def usage(request: Request, since: str | None = Query(None, max_length=40),
                who: Principal = Depends(caller)) -> dict[str, Any]:
    """Tokens, calls and cost per model and per day (a user key: its own)."""
    _check_date("since", since)
    lab = lab_state(request)
    rows = await lab.run(lambda: _ledger(lab).usage(since=since, owner=owner_filter(who)))
    totals = {k: sum(r[k] for r in rows) for k in ("calls", "prompt_tokens", "completion_tokens", "total_tokens")}
    totals["cost_usd"] = round(sum(r["cost_usd"] for r in rows), 6)
    return {"usage": rows, "totals": totals}


@router.post("/logs/purge", **typed(Purged))
async def purge(body: PurgeRequest, request: Request, who: Principal = Depends(caller)) -> dict[str, Any]:
    """Delete recorded runs (all, or those before a date) — the user's right to forget; a user key
    deletes its own records, an admin key everyone's."""
    _check_date("before", body.before)
    lab = lab_state(request)
    n = await lab.run(lambda: _ledger(lab).purge(before=body.before, owner=owner_filter(who)))
    return {"deleted": n}
