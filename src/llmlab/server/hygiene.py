"""Text hygiene at the HTTP door: a JSON body with text UTF-8 cannot encode is refused with a 400.

JSON can spell a lone surrogate (``"\\ud800"``); decoded, it is a Python ``str`` that no backend
can encode. This middleware reads each JSON body once (the body limit in front of it bounds its
size), and if any string in it — keys included — holds such a code point, answers 400 in OpenAI's
error shape naming the field, before any route sees it. Every other body is passed on untouched,
as are bodies that are not valid JSON (the route's own validation names the problem).
"""
from __future__ import annotations

import json
from typing import Any

from ..textcheck import UnencodableTextError, describe, first_unencodable, printable
from .errors import error_response


def _is_json(scope: Any) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


class TextCheck:
    """The ASGI middleware (see the module docstring)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                await self.app(scope, _replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            value = None  # not JSON: the route's validation answers
        bad = first_unencodable(value) if value is not None else None
        if bad is not None:
            err = UnencodableTextError(describe(*bad))
            err.param = printable(bad[0]) or None  # type: ignore[attr-defined]
            await error_response(err)(scope, receive, send)
            return
        await self.app(scope, _replay(body, None, receive), send)


def _replay(body: bytes | list, first: Any, receive: Any) -> Any:
    """A ``receive`` that gives the buffered body (or message) once, then the real one's messages."""
    pending = [first] if first is not None else [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Any:
        if pending:
            return pending.pop()
        return await receive()

    return replay
