"""The app factory: ``create_app(settings) -> FastAPI``, with all state on ``app.state.lab``.

Nothing lives in module globals, so tests build as many apps as they like (each with its
own model pool — e.g. the scripted fake). The web UI, when ``llmlab.webui`` provides
``mount_ui(app)``, is mounted at ``/`` by the same process; until then ``/`` points to
the API docs.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse

from .. import __version__
from ..config import Settings, load_settings
from .errors import ERROR_SCHEMA, PayloadTooLargeError, error_response, install_error_handlers
from .gate import AuthGate, ui_user
from .hygiene import TextCheck
from .pool import ModelPool, default_pool
from .settings import ServerSettings
from .state import LabState

log = logging.getLogger(__name__)

#: routes that take files get the upload limit instead of the body limit; the web UI's upload
#: route (Gradio's) is matched at any mount path
UPLOAD_PATHS = ("/lab/uploads", "/lab/rag/upload")
UI_UPLOAD_ROUTE = "/gradio_api/upload"


class BodyLimit:
    """Refuses request bodies over the limit with 413 — by Content-Length up front, else while reading.

    A body found too big while it is read raises inside the app. The lab's routes turn that
    into a 413 themselves, but a mounted app (the web UI) answers it with a 500 of its own,
    so once the limit is hit whatever the app sends is replaced by the 413.
    """

    def __init__(self, app: Any, settings: ServerSettings):
        self.app = app
        self.settings = settings

    def limit_for(self, path: str) -> int:
        path = path.rstrip("/")
        if path in UPLOAD_PATHS or path.endswith(UI_UPLOAD_ROUTE):
            return self.settings.max_upload_bytes + 256 * 1024  # multipart framing
        return self.settings.max_body_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        too_big = PayloadTooLargeError(f"the request body is larger than this server's limit of {limit} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await error_response(too_big)(scope, receive, send)
                    return
        seen = 0
        state = {"started": False, "exceeded": False, "answered": False}

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    state["exceeded"] = True
                    raise too_big  # inside the route: the error handlers answer 413
            return message

        async def answer_too_big() -> None:
            if not state["answered"]:
                state["answered"] = True
                await error_response(too_big)(scope, receive, send)

        async def guarded_send(message: Any) -> None:
            if state["exceeded"] and not state["started"]:
                await answer_too_big()  # whatever the app answers (a mounted app's 500): the client gets 413
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["exceeded"] or state["started"]:
                raise
            await answer_too_big()


def _document_errors(app: FastAPI, auth: bool) -> None:
    """Every operation documents its error responses in OpenAI's shape (for clients and schemathesis);
    the bearer scheme is documented only when this server checks keys."""
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base_openapi()
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        ref = {"description": "an error in OpenAI's shape",
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        if not auth:
            schema["components"].pop("securitySchemes", None)
        for path in schema.get("paths", {}).values():
            for op in path.values():
                if not auth:
                    op.pop("security", None)
                responses = op.setdefault("responses", {})
                for code in ("400", "401", "402", "403", "404", "413", "415", "422", "429", "501", "502"):
                    responses[code] = ref
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: ServerSettings | None = None, *, core: Settings | None = None,
               pool: ModelPool | None = None) -> FastAPI:
    """Build the server: OpenAI-compatible routes, lab routes, error mapping, limits, CORS, UI.

    ``core`` is the lab's settings (default: loaded from file and environment); ``pool``
    replaces the model pool (tests inject one that loads the fake backend).
    """
    settings = settings or ServerSettings()
    core = core or load_settings()
    lab = LabState(settings, core, pool or default_pool(core, settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        lab.start()
        for name in settings.models:  # preload: readiness means these answer at once
            lease = await lab.run(lab.pool.acquire, name)
            lease.release()
        lab.ready = True
        yield
        lab.ready = False
        lab.close()

    app = FastAPI(title="llmlab", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="LLM 실습실 — OpenAI-compatible API and lab endpoints. Errors use OpenAI's JSON shape.")
    app.state.lab = lab
    install_error_handlers(app)

    from . import docs, metrics, openai_routes
    from .lab import router as lab_router

    docs.install_docs(app)  # Swagger UI from the installed package: /docs works offline
    app.include_router(openai_routes.router)
    app.include_router(metrics.router)
    app.include_router(openai_routes.v1)
    app.include_router(lab_router)
    _document_errors(app, settings.auth_required)

    # outermost last: body limit → CORS (answers preflights) → the key gate → the text check → routes
    app.add_middleware(TextCheck)
    app.add_middleware(AuthGate, settings=settings, home=core.home)  # every route, mounted apps and later ones too
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(BodyLimit, settings=settings)
    _mount_ui(app, settings.ui, settings.max_upload_bytes)
    lab.metrics.touch_routes(app.openapi().get("paths", {}))
    app.add_middleware(metrics.RequestMetrics, metrics=lab.metrics)  # outermost: every answer is counted
    return app


def _mount_ui(app: FastAPI, wanted: bool, max_upload: int) -> None:
    """Mount the web UI at "/" when ``llmlab.webui`` offers ``mount_ui(app)``; else "/" shows the API docs."""
    mount = None
    if wanted and importlib.util.find_spec("llmlab.webui") is not None:
        try:
            webui = importlib.import_module("llmlab.webui")
            mount = getattr(webui, "mount_ui", None)
        except ImportError as e:  # e.g. the UI's own dependency is missing: the API still serves
            log.warning("the web UI is not available: %s", e)
    if mount is not None:
        # the UI's own upload route keeps the server's limit; Gradio learns the signed-in key from the gate
        mount(app, max_upload=max_upload, auth_dependency=ui_user)
        return

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/docs")
