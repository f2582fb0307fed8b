"""What routes know about the caller: the principal the gate let in, and the admin-only check.

The key check itself is :class:`~llmlab.server.gate.AuthGate`, in front of the whole app; these
dependencies only read what it found. Without configured keys (a loopback-only server) every
request acts as ``anonymous``, an admin. The key itself is never logged or echoed; the rest of
the server sees a short id derived from its hash (for budgets and record ownership).
"""
from __future__ import annotations

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import AuthError, ForbiddenError
from .gate import principal_of
from .keys import Principal

#: documents the scheme in /openapi.json; the check itself is the gate
bearer_scheme = HTTPBearer(auto_error=False, description="an API key given to `llmlab serve --api-key`")


# async on purpose: a plain def dependency would take a worker thread for every request
async def caller(request: Request, _doc: HTTPAuthorizationCredentials | None = Security(bearer_scheme)) -> Principal:
    """FastAPI dependency: the caller's principal (401 if the gate let nobody in — an open path)."""
    p = principal_of(request)
    if p is None:
        raise AuthError("this server needs an API key: send 'Authorization: Bearer YOUR_KEY'")
    return p


async def api_key(request: Request, _doc: HTTPAuthorizationCredentials | None = Security(bearer_scheme)) -> str:
    """FastAPI dependency: the caller's key id (for budgets)."""
    return (await caller(request)).key_id


async def admin_only(request: Request) -> Principal:
    """FastAPI dependency: 403 unless the caller's key is an admin key."""
    p = await caller(request)
    if not p.is_admin:
        raise ForbiddenError("this needs an admin key (pulling or loading models, fine-tuning, dropping collections); "
                             "yours is a user key")
    return p


def owner_filter(p: Principal) -> str | None:
    """Whose ledger records a caller may read: an admin every record (None), a user only its own."""
    return None if p.is_admin else p.key_id
