"""The web UI: Gradio screens mounted into the lab's FastAPI app, served at ``/``.

The UI holds no logic of its own — every screen calls the same capability functions the CLI
and the HTTP API call (chat sessions, listing/fit/pull, the grid runner, RAG, fine-tuning,
the ledger). Nothing heavy is imported until :func:`mount_ui` runs: Gradio loads then.
Everything the browser fetches comes from this server (fonts included); no analytics.
"""
from __future__ import annotations

import os
from typing import Any

__all__ = ["mount_ui", "build_ui", "LocalLab"]

#: the largest upload the UI accepts (documents, datasets) unless the host says otherwise
#: (``llmlab serve`` passes its ``max_upload_bytes``)
MAX_UPLOAD = 50 * 1024 * 1024


def mount_ui(app: Any, lab: Any = None, *, path: str = "/", max_upload: int | str = MAX_UPLOAD,
             auth_dependency: Any = None) -> Any:
    """Mount the UI on FastAPI ``app`` at ``path`` and return ``app``.

    ``lab`` shares settings, the ledger and loaded models with the host (see
    :class:`~llmlab.webui.lab.Lab`); by default ``app.state.lab`` when the server set one, else a
    :class:`~llmlab.webui.lab.LocalLab`. ``max_upload`` (bytes, or e.g. ``"20mb"``) caps each
    uploaded file. ``auth_dependency`` (``request -> "ROLE:KEY_ID" | None``) tells the screens who
    is signed in (the server passes its key gate's). Mount the UI after the API routes: a mount at
    ``/`` answers every path that no earlier route claimed.
    """
    from ..errors import MissingDependencyError

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no usage reports, ever
    if lab is None:
        lab = getattr(getattr(app, "state", None), "lab", None)
    if lab is None:
        from .lab import LocalLab

        lab = LocalLab()
    # uploads land under the lab's home, in folders named by content hash (read when Blocks are made)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(lab.settings.home / "webui" / "uploads"))
    try:
        import gradio as gr
    except ImportError:
        raise MissingDependencyError("gradio", purpose="the web UI") from None

    from .app import build_ui
    from .theme import CSS, theme

    blocks = build_ui(lab)
    gr.mount_gradio_app(app, blocks, path=path, theme=theme(), css=CSS, ssr_mode=False, footer_links=["settings"],
                        max_file_size=max_upload, show_error=True, auth_dependency=auth_dependency)
    return app


def __getattr__(name: str) -> Any:
    if name == "build_ui":
        from .app import build_ui

        return build_ui
    if name == "LocalLab":
        from .lab import LocalLab

        return LocalLab
    raise AttributeError(f"module 'llmlab.webui' has no attribute {name!r}")
