"""Test-wide setup: an isolated LLMLAB_HOME, offline hubs, no outbound network, markers."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (runs wherever one is available)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def llmlab_home(tmp_path_factory, monkeypatch):
    """Every test gets its own LLMLAB_HOME so nothing touches the user's ledger."""
    home = tmp_path_factory.mktemp("llmlab-home")
    monkeypatch.setenv("LLMLAB_HOME", str(home))
    return home


_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1") or self.family == socket.AF_UNIX):
        raise RuntimeError(f"tests must not reach the network (tried {address!r})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Block outbound connections except to loopback (local test servers are fine)."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


def _bundled(name: str) -> Path:
    """A bundled course dataset's folder, found the way `llmlab datasets path NAME` finds it."""
    from llmlab.datasets import path

    return path(name)


@pytest.fixture(scope="session")
def course_rag() -> Path:
    """Bundled RAG set: docs/ (md, txt, html, docx, pdf, one CP949 txt), eval/{corpus,questions}.jsonl."""
    return _bundled("course_rag")


@pytest.fixture(scope="session")
def course_sft() -> Path:
    """Bundled instruction set: train.jsonl, eval.jsonl ({instruction, input, output})."""
    return _bundled("course_sft")


@pytest.fixture(scope="session")
def course_mt() -> Path:
    """Bundled ko–en translation set: dev.jsonl ({id, ko, en, domain})."""
    return _bundled("course_mt")


@pytest.fixture(scope="session")
def course_summ() -> Path:
    """Bundled summarization set: dev.jsonl ({id, title, document, summary})."""
    return _bundled("course_summ")


@pytest.fixture(scope="session")
def bundled_model_session():
    """The bundled GGUF model through llama.cpp, loaded once (1 thread: see the README on threads)."""
    from llmlab.models.model import load_model

    m = load_model("smollm2-135m", threads=1, ledger=False)
    yield m
    m.close()
