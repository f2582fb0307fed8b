"""``llmlab serve``: the OpenAI-compatible API, the lab endpoints and the web UI, with uvicorn.

Safe by default: it listens on 127.0.0.1; another address needs API keys (``--api-key`` or
``--api-keys FILE``) or it refuses to start. Keys are hashed at once and never logged.
"""
from __future__ import annotations

import logging

import click

from .common import fail, handle_errors


@click.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1; others need API keys).")
@click.option("--port", type=int, default=None, help="Port (default 8000; 0 picks a free one).")
@click.option("--model", "-m", "models", multiple=True, help="Model to load at start (repeatable); others load on use.")
@click.option("--api-key", "api_keys", multiple=True, help="Accepted API key (repeatable). Prefer --api-keys FILE: "
              "command lines are visible to other users.")
@click.option("--api-keys", "api_keys_file", type=click.Path(dir_okay=False), default=None,
              help="File with one key (or sha256:HEX hash) per line.")
@click.option("--cors-origin", "cors_origins", multiple=True, help="Allow browser calls from this origin (repeatable).")
@click.option("--threads", type=int, default=None, help="llama.cpp threads per model.")
@click.option("--queue-size", type=int, default=None, help="Requests waiting per model before 429.")
@click.option("--no-ui", is_flag=True, help="Serve the API only, no web UI at /.")
@handle_errors
def serve(host, port, models, api_keys, api_keys_file, cors_origins, threads, queue_size, no_ui) -> None:
    """Serve the lab: OpenAI-compatible /v1 API, /lab endpoints and the web UI."""
    from ..server.settings import load_server_settings

    settings = load_server_settings(
        host=host, port=port, models=list(models) or None, api_keys=list(api_keys) or None,
        api_keys_file=api_keys_file, cors_origins=list(cors_origins) or None, threads=threads, queue_size=queue_size,
        ui=False if no_ui else None,
    )
    try:
        import uvicorn
    except ImportError:
        fail('the server needs uvicorn and fastapi: pip install "llmlab[ui]"')
    from ..server.app import create_app

    app = create_app(settings)
    logging.getLogger("llmlab").setLevel(min(logging.getLogger().level or logging.WARNING, logging.INFO))
    auth = f"{len(settings.api_key_hashes)} API key(s)" if settings.auth_required else "no API keys (loopback only)"
    click.echo(f"llmlab serving on http://{settings.host}:{settings.port} — {auth}; API docs at /docs", err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", access_log=True,
                proxy_headers=False, server_header=False)
