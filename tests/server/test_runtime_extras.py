"""`make run` installs only the runtime and the ui extra: the lab (API, web UI, a chat on the bundled
model) must work with the hf, gpu and interop extras absent. A subprocess makes their modules
unimportable and serves a request."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOT_IN_MAKE_RUN = ["torch", "transformers", "peft", "trl", "accelerate", "datasets", "sentencepiece", "bitsandbytes",
                   "langchain_core", "llama_index"]


@pytest.mark.slow
def test_the_lab_runs_without_the_hf_gpu_and_interop_extras(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        for m in {NOT_IN_MAKE_RUN!r}:
            sys.modules[m] = None  # "import m" now raises ImportError, as if not installed
        from fastapi.testclient import TestClient
        from llmlab.server.app import create_app
        from llmlab.server.settings import load_server_settings
        c = TestClient(create_app(load_server_settings(port=0)))
        assert c.get("/").status_code == 200, "web UI"
        r = c.post("/v1/chat/completions", json={{"model": "smollm2-135m", "max_tokens": 4,
                                                  "messages": [{{"role": "user", "content": "hi"}}]}})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"]
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "LLMLAB_HOME": str(tmp_path), "LLMLAB_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]
