"""A real third-party OpenAI-compatible server for the ``openai`` backend: llama.cpp's ``llama-server``.

The binary is the one ``bench/peers.py`` builds from the llama.cpp that llama-cpp-python
vendors (``make test`` builds it once into a cache outside the repository). In CI a missing
build fails these tests; on a machine without a compiler or cmake they skip, saying why.
"""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL_ID = "smollm2-remote"


def _peers():
    spec = importlib.util.spec_from_file_location("llmlab_bench_peers", ROOT / "bench" / "peers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def llama_server_bin() -> str:
    peers = _peers()
    found = peers.find_built()
    if found is None:
        missing = peers._missing_tools()
        if missing and os.environ.get("CI") != "true":
            pytest.skip("llama-server cannot be built here: missing " + "; ".join(missing))
        try:
            found = peers.ensure_built(log=lambda message: None)
        except peers.PeerBuildError as e:
            pytest.fail(f"llama-server could not be built: {e}")
    return found["llama_server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """One ``llama-server`` process on 127.0.0.1 serving the bundled GGUF."""

    def __init__(self, binary: str, *extra: str):
        from llmlab.models.spec import bundled_path

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [binary, "-m", str(bundled_path("smollm2-135m")), "--host", "127.0.0.1", "--port", str(self.port),
                    "--alias", MODEL_ID, "-t", "1", "-c", "4096", "--parallel", "2", "--no-webui", *extra]
        self.proc: subprocess.Popen | None = None

    def start(self) -> "LlamaServer":
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited ({self.proc.returncode}): {self.proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("llama-server did not become healthy within 120 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def chat_server(llama_server_bin):
    server = LlamaServer(llama_server_bin).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def embedding_server(llama_server_bin):
    server = LlamaServer(llama_server_bin, "--embedding", "--pooling", "mean").start()
    yield server
    server.stop()


@pytest.fixture
def remote_env(tmp_path, chat_server, monkeypatch):
    """Settings that point the ``openai`` backend at the chat server with the llamacpp profile."""
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LLMLAB_API_BASE", chat_server.url + "/v1")
    monkeypatch.setenv("LLMLAB_API_PROFILE", "llamacpp")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("LLMLAB_API_KEY", raising=False)
    return {**os.environ}
