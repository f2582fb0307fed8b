"""The server on the bundled model (smollm2-135m through llama.cpp, one thread, few tokens)."""
from __future__ import annotations

import json
import time

import httpx
import pytest

from llmlab.config import load_settings
from llmlab.server.app import create_app
from llmlab.server.pool import default_pool
from llmlab.server.settings import ServerSettings

from .conftest import live_server, parse_sse

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    core = load_settings(home=tmp_path_factory.mktemp("real-home"))
    settings = ServerSettings(ui=False, models=[MODEL], threads=1, embedding_models=["hash"])
    app = create_app(settings, core=core, pool=default_pool(core, settings))
    with live_server(app) as url:
        yield url, app


def test_chat_on_the_bundled_model(server):
    url, app = server
    health = httpx.get(url + "/health").json()
    assert [m["name"] for m in health["models"]] == [MODEL] and health["models"][0]["threads"] == 1
    r = httpx.post(url + "/v1/chat/completions", timeout=120, json={
        "model": MODEL, "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 12, "temperature": 0})
    d = r.json()
    assert r.status_code == 200 and d["choices"][0]["message"]["content"].strip()
    assert 0 < d["usage"]["completion_tokens"] <= 12


def test_korean_stream_is_valid_utf8(server):
    url, _ = server
    with httpx.stream("POST", url + "/v1/chat/completions", timeout=120, json={
            "model": MODEL, "stream": True, "max_tokens": 24, "temperature": 0,
            "messages": [{"role": "user", "content": "한국어로 인사해 주세요. 안녕하세요!"}]}) as r:
        events = parse_sse(r.read())  # strict UTF-8 decoding of the raw bytes
    assert events[-1] == "[DONE]"
    pieces = [json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1]]
    assert all("\ufffd" not in p for p in pieces) and "".join(pieces)


def test_openai_client_streams_from_the_bundled_model(server):
    openai = pytest.importorskip("openai")
    url, _ = server
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello."}], max_tokens=10, temperature=0, stream=True)
        if c.choices)
    assert text.strip()


def test_disconnect_frees_the_llamacpp_scheduler(server):
    url, app = server
    sched = app.state.lab.pool.get_loaded(MODEL).backend.scheduler
    with httpx.Client(timeout=120) as client:
        with client.stream("POST", url + "/v1/chat/completions", json={
                "model": MODEL, "stream": True, "max_tokens": 2000, "temperature": 1.0, "seed": 1,
                "messages": [{"role": "user", "content": "Write a very long story about a dragon."}]}) as r:
            lines = r.iter_lines()
            for _ in range(8):
                next(lines)
            assert sched.load["active"] == 1
    deadline = time.monotonic() + 15
    while sched.load["active"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sched.load["active"] == 0 and sched.load["waiting"] == 0
