"""The one place where errors become HTTP responses, in OpenAI's JSON error shape.

``{"error": {"message", "type", "param", "code"}}`` for every failure: llmlab errors map
to a status by class (the nearest class in the table wins), request validation gives 422,
a busy model 429 with ``Retry-After``. Anything unexpected is logged and answered with a
generic 500 that reveals nothing — user input must never get there.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (BackendError, BusyError, QueueTimeoutError, ContextOverflowError, InputFileError, InvalidParameterError,
                      DiskFullError, LedgerError, LLMLabError, MissingDependencyError, ModelNotFoundError, RegistryError,
                      UnsupportedParameterError)
from ..guard.budget import BudgetExceededError
from ..jobs import JobNotFoundError
from ..rag.types import CollectionNotFoundError

log = logging.getLogger(__name__)


class AuthError(LLMLabError):
    code = "invalid_api_key"


class ForbiddenError(LLMLabError):
    """The key is valid but its role may not do this."""

    code = "forbidden"


class NotFoundError(LLMLabError):
    """A job, upload or route that does not exist."""

    code = "not_found"


class PayloadTooLargeError(LLMLabError):
    code = "payload_too_large"


class UnsupportedMediaTypeError(LLMLabError):
    code = "unsupported_media_type"


#: status per error class; the nearest class in an error's MRO decides
STATUS: dict[type, int] = {
    AuthError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    JobNotFoundError: 404,
    ModelNotFoundError: 404,
    CollectionNotFoundError: 404,
    BudgetExceededError: 402,
    PayloadTooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    QueueTimeoutError: 503,
    BusyError: 429,
    ContextOverflowError: 400,
    InvalidParameterError: 400,
    UnsupportedParameterError: 400,
    InputFileError: 400,
    RegistryError: 400,
    MissingDependencyError: 501,
    BackendError: 502,
    DiskFullError: 507,  # Insufficient Storage: the message names the path
    LedgerError: 500,
    LLMLabError: 400,  # the root: an error a user can cause (see llmlab.errors)
}

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "insufficient_quota",
               403: "permission_error",
               404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
               415: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}


def status_for(exc: LLMLabError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def _printable(text: str | None) -> str | None:
    # an error may echo what the client sent; text UTF-8 cannot encode must not turn it into a 500
    return None if text is None else str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(message: str, status: int, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    message, param = _printable(message), _printable(param)
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "param": param,
                      "code": code}}


def error_event(exc: BaseException) -> dict[str, Any]:
    """The error body for an error that happens after a stream began (sent as an SSE event)."""
    if isinstance(exc, LLMLabError):
        if status_for(exc) >= 500:
            log.error("%s mid-stream: %s", type(exc).__name__, exc)
        return error_body(str(exc), status_for(exc), exc.code)
    log.error("unexpected error mid-stream", exc_info=exc)
    return error_body("internal server error; the server log has the details", 500, "internal_error")


def error_response(exc: BaseException) -> JSONResponse:
    """The response for any exception — the single mapping every handler and middleware uses."""
    headers: dict[str, str] = {}
    if isinstance(exc, LLMLabError):
        status = status_for(exc)
        body = error_body(str(exc), status, exc.code, getattr(exc, "param", None))
        if isinstance(exc, BusyError):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc)
    elif isinstance(exc, RequestValidationError):
        status = 422
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path")]
        param = ".".join(loc) or None
        detail = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in errs[:5])
        body = error_body(f"invalid request: {detail}", status, "invalid_parameter", param)
    elif isinstance(exc, StarletteHTTPException):
        status = exc.status_code
        body = error_body(str(exc.detail), status, {404: "not_found", 405: "method_not_allowed"}.get(status))
        headers.update(exc.headers or {})
    else:
        log.exception("unexpected error while serving a request", exc_info=exc)
        status = 500
        body = error_body("internal server error; the server log has the details", 500, "internal_error")
    return JSONResponse(body, status_code=status, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (for a 405's ``Allow`` header)."""
    from starlette.routing import Match

    methods = {m for route in request.app.routes for m in (getattr(route, "methods", None) or ())
               if route.matches({**request.scope, "method": m})[0] == Match.FULL}
    return sorted(methods - {"HEAD"})


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 405:
        exc = StarletteHTTPException(405, exc.detail, headers={"Allow": ", ".join(allowed_methods(request))})
    return error_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception through :func:`error_response`."""
    for cls in (LLMLabError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(cls, _handle)


#: the error responses documented on every route (for clients and schemathesis)
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}},
}
