"""Query parameters a route does not declare are refused, not silently ignored.

A misspelt ``?limt=5`` should say so (listing the valid names) instead of quietly
returning the default twenty rows.
"""
from __future__ import annotations

from fastapi import Request

from ..errors import InvalidParameterError


async def known_query_only(request: Request) -> None:
    """FastAPI dependency: 400 for query parameters the route does not take."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = {p.alias for p in _all_query_params(dependant)}
    unknown = sorted(set(request.query_params.keys()) - known)
    if unknown:
        valid = ", ".join(sorted(known)) or "(none)"
        err = InvalidParameterError(f"unknown query parameter(s) {', '.join(map(repr, unknown))}; valid: {valid}")
        err.param = unknown[0]  # type: ignore[attr-defined]
        raise err


def _all_query_params(dependant):
    yield from dependant.query_params
    for sub in dependant.dependencies:
        yield from _all_query_params(sub)
