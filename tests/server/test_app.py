"""The app factory and ``llmlab serve``: lazy imports, state per app, a real process."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
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


@pytest.mark.slow
def test_sigterm_ends_streams_flushes_the_ledger_and_exits_cleanly(tmp_path):
    """A real `llmlab serve` on the bundled model: SIGTERM during a long stream ends that stream
    (finished or cut at the grace period), the process exits 0 and the ledger is closed and whole."""
    import signal
    import socket
    import sqlite3
    import threading

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LLMLAB_HOME": str(tmp_path), "LLMLAB_THREADS": "1", "LLMLAB_SERVER_SHUTDOWN_GRACE_S": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "llmlab.cli.main", "serve", "--port", str(port), "--no-ui",
                             "--model", "smollm2-135m"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        done = httpx.post(url + "/v1/chat/completions", timeout=120, json={
            "model": "smollm2-135m", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]})
        assert done.status_code == 200
        got: dict = {"lines": []}
        streaming = threading.Event()

        def read_stream() -> None:
            try:
                with httpx.stream("POST", url + "/v1/chat/completions", timeout=120, json={
                        "model": "smollm2-135m", "stream": True, "max_tokens": 4000, "ignore_eos": True,
                        "messages": [{"role": "user", "content": "Write a very long story."}]}) as r:
                    for line in r.iter_lines():
                        got["lines"].append(line)
                        streaming.set()
            except httpx.HTTPError as e:  # cut at the grace period: the connection closes
                got["error"] = e
            streaming.set()

        reader = threading.Thread(target=read_stream)
        reader.start()
        assert streaming.wait(60)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        reader.join(30)
        assert not reader.is_alive(), "the stream did not end after SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
    # uvicorn re-raises the signal once it has shut down, so "killed by SIGTERM" is a clean exit too
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out and "Traceback" not in out, out
    assert got["lines"], "the stream had started"
    ledger = tmp_path / "ledger.db"
    assert not (tmp_path / "ledger.db-wal").exists() or (tmp_path / "ledger.db-wal").stat().st_size == 0, \
        "the ledger was not closed (its write-ahead log was left behind)"
    db = sqlite3.connect(ledger)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] >= 1
    finally:
        db.close()
