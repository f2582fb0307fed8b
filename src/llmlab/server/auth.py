"""API key check: ``Authorization: Bearer KEY`` (or ``X-API-Key``), compared in constant time.

Without configured keys (a loopback-only server) every request passes as ``anonymous``.
The key itself is never logged or echoed; what the rest of the server sees is a short id
derived from its hash (used for per-key budgets).
"""
from __future__ import annotations

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import AuthError
from .settings import key_id
from .state import ANONYMOUS

#: documents the scheme in /openapi.json; the check itself is :func:`api_key`
bearer_scheme = HTTPBearer(auto_error=False, description="an API key given to `llmlab serve --api-key`")


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return request.headers.get("x-api-key") or request.headers.get("api-key")


async def api_key(request: Request, _doc: HTTPAuthorizationCredentials | None = Security(bearer_scheme)) -> str:
    """FastAPI dependency: the caller's key id, or 401."""
    settings = request.app.state.lab.server
    if not settings.auth_required:
        return ANONYMOUS
    presented = presented_key(request)
    if presented is None:
        raise AuthError("this server needs an API key: send 'Authorization: Bearer YOUR_KEY'")
    matched = settings.match_key(presented)
    if matched is None:
        raise AuthError("the API key is not valid for this server")
    return key_id(matched)
