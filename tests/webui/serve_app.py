"""Start the lab's web app for the browser tests: ``python serve_app.py PORT_FILE``.

It listens on a free loopback port and writes that port number into ``PORT_FILE``.

Runs in its own process so the tests' environment (an isolated ``LLMLAB_HOME``, one thread)
is the app's, and the browser talks to a real server over loopback. The app is the server's
``create_app(core=settings)`` when that exists, else a bare FastAPI app with the UI mounted.
"""
from __future__ import annotations

import socket
import sys
from pathlib import Path

import uvicorn


def build_app():
    from llmlab.config import load_settings
    from llmlab.webui import mount_ui

    settings = load_settings()
    try:
        from llmlab.server import create_app
    except ImportError:
        from fastapi import FastAPI

        return mount_ui(FastAPI())
    app = create_app(core=settings)  # server settings: defaults and LLMLAB_SERVER_* (loopback, no keys)
    if not any(type(r).__name__ == "Mount" and getattr(r, "path", None) in ("", "/") for r in app.routes):
        mount_ui(app)
    return app


def main(port_file: str) -> None:
    app = build_app()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    tmp = Path(port_file + ".tmp")
    tmp.write_text(str(sock.getsockname()[1]))
    tmp.rename(port_file)  # the reader never sees a half-written number
    server.run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1])
