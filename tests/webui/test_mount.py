"""``mount_ui``: the UI answers at / of a FastAPI app, offline, and the server's state is a Lab."""
from __future__ import annotations

import pytest

from llmlab.config import load_settings
from llmlab.webui.lab import Lab, LocalLab


def test_the_ui_is_served_at_the_root():
    pytest.importorskip("gradio")
    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from llmlab.webui import mount_ui

    app = fastapi.FastAPI()

    @app.get("/health")
    def health():
        return {"ok": True}

    mount_ui(app, LocalLab(load_settings()))
    with TestClient(app) as client:
        page = client.get("/")
        assert page.status_code == 200 and "LLM 실습실" in page.text
        assert "fonts.googleapis.com" not in page.text
        assert client.get("/health").json() == {"ok": True}  # routes added before the mount still answer


def test_the_local_lab_is_a_lab():
    assert isinstance(LocalLab(load_settings()), Lab)


def test_the_servers_state_is_a_lab():
    pytest.importorskip("fastapi")
    server = pytest.importorskip("llmlab.server.app")
    from llmlab.server.settings import ServerSettings

    app = server.create_app(ServerSettings(ui=False), core=load_settings())
    assert isinstance(app.state.lab, Lab)


def test_importing_the_ui_modules_stays_light():
    import subprocess
    import sys

    heavy = ("gradio", "fastapi", "pandas", "torch", "transformers", "llama_cpp")
    code = ("import sys, llmlab.webui, llmlab.webui.app\n"
            "from llmlab.webui.screens import chat, models, prompt_lab, documents, finetune, usage\n"
            "print(','.join(m for m in %r if m in sys.modules))" % (heavy,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing the UI modules pulled in: {out}"
