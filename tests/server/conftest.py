"""Fixtures for the server tests: apps on the scripted fake backend and live uvicorn servers."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from llmlab.config import load_settings  # noqa: E402
from llmlab.models.model import load_model  # noqa: E402
from llmlab.server.app import create_app  # noqa: E402
from llmlab.server.pool import ModelPool  # noqa: E402
from llmlab.server.settings import ServerSettings  # noqa: E402


def fake_pool(replies: list[str] | None = None, **options: Any) -> ModelPool:
    """A pool whose every model is the scripted fake (any name loads)."""
    def loader(name: str):
        return load_model(name, backend="fake", replies=replies, **options)

    return ModelPool(loader, resolver=lambda name: "fake")


def make_app(pool: ModelPool | None = None, *, replies: list[str] | None = None, fake: dict | None = None,
             home: Any = None, **settings: Any):
    """An app on the fake backend; ``home`` for apps that outlive one test (else the test's LLMLAB_HOME)."""
    settings.setdefault("ui", False)
    settings.setdefault("embedding_models", ["hash"])
    settings.setdefault("rag_embedder", "hash")
    core = load_settings(home=str(home)) if home is not None else load_settings()
    return create_app(ServerSettings(**settings), core=core, pool=pool or fake_pool(replies, **(fake or {})))


@pytest.fixture
def client_for():
    """``client_for(**settings)`` → a TestClient on a fake-backend app (lifespan running)."""
    from fastapi.testclient import TestClient

    clients = []

    def make(pool: ModelPool | None = None, **kw: Any):
        c = TestClient(make_app(pool, **kw))
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def parse_sse(body: bytes) -> list[str]:
    """The data payloads of a server-sent event stream; fails on anything malformed."""
    text = body.decode("utf-8")  # strict: a broken UTF-8 sequence fails the test
    events = []
    assert text.endswith("\n\n"), "the stream must end with a complete event"
    for block in text.split("\n\n")[:-1]:
        lines = block.split("\n")
        assert all(ln.startswith("data: ") for ln in lines), f"malformed event {block!r}"
        events.append("\n".join(ln[6:] for ln in lines))
    return events
