"""``/docs`` and ``/redoc`` that work offline: Swagger UI's and ReDoc's files are served from
the installed ``fastapi-offline`` package (its ``static/`` folder; Swagger UI 5, which reads the
OpenAPI 3.1 that FastAPI writes) instead of a CDN — FastAPI's default pages are blank offline.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

log = logging.getLogger(__name__)

ASSETS = "/docs-assets"
# a one-pixel transparent icon: the default favicon URL is on the internet
NO_FAVICON = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="


def install_docs(app: FastAPI) -> None:
    """Add ``/docs`` (and its OAuth2 redirect) to an app built with ``docs_url=None``."""
    assets: dict[str, Any] = {}
    redoc: dict[str, Any] = {}
    try:
        import fastapi_offline

        static = Path(fastapi_offline.__file__).parent / "static"
        app.mount(ASSETS, StaticFiles(directory=static), name="docs-assets")
        assets = {"swagger_js_url": f"{ASSETS}/swagger-ui-bundle.js", "swagger_css_url": f"{ASSETS}/swagger-ui.css"}
        redoc = {"redoc_js_url": f"{ASSETS}/redoc.standalone.js", "with_google_fonts": False}
    except ImportError:  # pragma: no cover - part of the ui extra
        log.warning("fastapi-offline is not installed: /docs loads Swagger UI from a CDN (blank offline); "
                    'pip install "llmlab[ui]"')

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} — API",
                                   oauth2_redirect_url="/docs/oauth2-redirect", swagger_favicon_url=NO_FAVICON,
                                   **assets)

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc_html() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} — API",
                              redoc_favicon_url=NO_FAVICON, **redoc)
