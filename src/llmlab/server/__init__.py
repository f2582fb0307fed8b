"""The lab as a service: an OpenAI-compatible HTTP API plus the lab's own endpoints.

``create_app(settings)`` (in :mod:`.app`) builds the FastAPI application; ``llmlab serve``
runs it with uvicorn. Importing this package loads nothing heavy — FastAPI is imported
by :mod:`.app` when an app is built.
"""
from __future__ import annotations

from typing import Any

__all__ = ["create_app", "ServerSettings"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ServerSettings":
        from .settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module 'llmlab.server' has no attribute {name!r}")
