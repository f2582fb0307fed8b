"""The app factory and ``llmlab serve``: lazy imports, state per app, a real process."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
from fastapi.testclient import TestClient

from .conftest import make_app


def test_importing_the_server_package_loads_no_web_framework():
    code = "import sys, llmlab, llmlab.server; assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_state_lives_on_each_app():
    a, b = make_app(replies=["a"]), make_app(replies=["b"])
    assert a.state.lab is not b.state.lab and a.state.lab.pool is not b.state.lab.pool
    for app, want in ((a, "a"), (b, "b")):
        with TestClient(app) as c:
            r = c.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
            assert r.json()["choices"][0]["message"]["content"] == want


def test_lifespan_can_run_again():
    app = make_app(replies=["again"])
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    for _ in range(2):
        with TestClient(app) as c:
            assert c.post("/v1/chat/completions", json=body).status_code == 200
        assert app.state.lab.pool.loaded() == []  # shutdown closed the models


def test_root_points_to_the_docs_without_a_ui():
    with TestClient(make_app()) as c:
        r = c.get("/", follow_redirects=False)
        assert r.status_code in (302, 307) and r.headers["location"] == "/docs"
        assert c.get("/openapi.json").json()["info"]["title"] == "llmlab"


def test_llmlab_serve_runs_a_real_server(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LLMLAB_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "llmlab.cli.main", "serve", "--port", str(port), "--no-ui",
                             "--api-key", "sk-process-key-1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else ""
                time.sleep(0.2)
        assert health.json()["status"] == "ok" and health.json()["auth"] is True
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 401
        ok = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": "Bearer sk-process-key-1"})
        assert ok.status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "sk-process-key-1" not in out  # the key is never logged
    assert "127.0.0.1" in out
