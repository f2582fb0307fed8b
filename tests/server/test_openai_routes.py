"""The OpenAI-compatible routes on the scripted fake backend: shapes, parameters, errors."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from .conftest import fake_pool, parse_sse

KO = "안녕하세요! 한국어 스트리밍은 깨지지 않아야 합니다."


def chat(client, stream=False, **body):
    body.setdefault("model", "fake-chat")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return client.post("/v1/chat/completions", json={**body, "stream": stream})


def test_health_lists_loaded_models(client_for):
    c = client_for(models=["preloaded"])
    h = c.get("/health").json()
    assert h["status"] == "ok" and [m["name"] for m in h["models"]] == ["preloaded"]
    assert h["models"][0]["load"] == {"active": 0, "waiting": 0, "free_slots": 8, "slots": 8}
    assert (h["ready"], h["slots_busy"], h["slots_free"], h["queue"]) == (True, 0, 8, 0)
    assert c.get("/health/live").json() == {"status": "alive"}
    assert c.get("/health/ready").json() == {"status": "ready"}


def test_chat_completion_shape(client_for):
    c = client_for(replies=[KO])
    r = chat(c)
    assert r.status_code == 200
    d = r.json()
    assert d["object"] == "chat.completion" and d["id"].startswith("chatcmpl-")
    assert d["choices"][0]["message"] == {"role": "assistant", "content": KO}
    assert d["choices"][0]["finish_reason"] == "stop"
    u = d["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] > 0


def test_streaming_is_valid_sse_and_utf8(client_for):
    c = client_for(replies=[KO])
    with c.stream("POST", "/v1/chat/completions", json={
            "model": "m", "messages": [{"role": "user", "content": "안녕"}], "stream": True,
            "stream_options": {"include_usage": True}}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.read())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(ch["object"] == "chat.completion.chunk" for ch in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks if ch["choices"])
    assert text == KO
    pieces = [ch["choices"][0]["delta"].get("content") for ch in chunks if ch["choices"]]
    assert all("\ufffd" not in (p or "") for p in pieces)
    finals = [ch for ch in chunks if ch["choices"] and ch["choices"][0]["finish_reason"]]
    assert finals and finals[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_parameters_reach_generation(client_for):
    c = client_for()
    r = chat(c, temperature=0.7, top_p=0.9, max_tokens=7, seed=3, n=2, stop=["zz"], top_k=5,
             logprobs=True, top_logprobs=2)
    assert r.status_code == 200, r.text
    d = r.json()
    assert len(d["choices"]) == 2
    for ch in d["choices"]:
        lp = ch["logprobs"]["content"]
        assert 0 < len(lp) <= 7 and len(lp[0]["top_logprobs"]) == 2
    again = chat(c, temperature=0.7, top_p=0.9, max_tokens=7, seed=3, n=2, stop=["zz"], top_k=5).json()
    assert [x["message"]["content"] for x in again["choices"]] == [x["message"]["content"] for x in d["choices"]]
    runs = c.get("/lab/logs", params={"limit": 1}).json()["runs"]
    p = runs[0]["params"]
    assert (p["temperature"], p["top_p"], p["max_new_tokens"], p["seed"], p["num_return_sequences"], p["stop"],
            p["top_k"]) == (0.7, 0.9, 7, 3, 2, ["zz"], 5)


def test_response_format_json_schema_is_passed_on(client_for):
    c = client_for(replies=['{"a": 1}'])
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    r = chat(c, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert r.status_code == 200
    assert c.get("/lab/logs", params={"limit": 1}).json()["runs"][0]["params"]["json_schema"] == schema


def test_completions_and_echo(client_for):
    c = client_for(replies=[" world"])
    r = c.post("/v1/completions", json={"model": "m", "prompt": "hello", "echo": True, "max_tokens": 10})
    d = r.json()
    assert r.status_code == 200 and d["object"] == "text_completion"
    assert d["choices"][0]["text"] == "hello world"
    with c.stream("POST", "/v1/completions", json={"model": "m", "prompt": ["hello"], "stream": True}) as s:
        events = parse_sse(s.read())
    assert events[-1] == "[DONE]"
    assert "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1] if json.loads(e)["choices"]) == " world"


def test_embeddings_float_and_base64(client_for):
    c = client_for()
    a = c.post("/v1/embeddings", json={"model": "hash", "input": ["서울의 날씨", "weather"]}).json()
    assert [e["index"] for e in a["data"]] == [0, 1] and len(a["data"][0]["embedding"]) == 64
    b = c.post("/v1/embeddings", json={"model": "hash", "input": "서울의 날씨", "encoding_format": "base64"}).json()
    vec = np.frombuffer(base64.b64decode(b["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(vec, a["data"][0]["embedding"], atol=1e-6)
    assert a["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize("body, status, param", [
    ({"model": "m", "messages": []}, 422, "messages"),
    ({"messages": [{"role": "user", "content": "x"}]}, 422, "model"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**6}, 400, "max_tokens"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "frequency_penalty": 0.5}, 400,
     "frequency_penalty"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, 400, "tools"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 3, "temperature": 0}, 400, None),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 50}, 400, "n"),
    ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, 422, None),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, None),
])
def test_invalid_requests_get_openai_errors(client_for, body, status, param):
    c = client_for()
    r = c.post("/v1/chat/completions", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and err["type"] == "invalid_request_error"
    if param:
        assert err["param"] == param


def test_too_many_messages_and_overflow(client_for):
    c = client_for(max_messages=3, fake={"context_length": 64})
    msgs = [{"role": "user", "content": "x"}] * 4
    assert chat(c, messages=msgs).status_code == 400
    r = chat(c, messages=[{"role": "user", "content": "long " * 100}])
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def test_unknown_model_is_404_never_a_fallback(client_for):
    from llmlab.config import load_settings
    from llmlab.server.pool import default_pool
    from llmlab.server.settings import ServerSettings

    c = client_for(pool=default_pool(load_settings(), ServerSettings()))
    r = chat(c, model="no-such-model")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert c.get("/v1/models/no-such-model").status_code == 404
    assert c.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"}).status_code == 404


def test_body_size_limit(client_for):
    c = client_for(max_body_bytes=4096)
    r = chat(c, messages=[{"role": "user", "content": "x" * 10_000}])
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_full_queue_answers_429_with_retry_after(client_for):
    c = client_for(max_concurrent_requests=1)
    lab = c.app.state.lab
    lab.admission.enter()  # one request in flight already
    try:
        r = chat(c)
    finally:
        lab.admission.exit()
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["type"] == "rate_limit_error"


def test_pool_shares_one_model_per_name(client_for):
    loads = []
    pool = fake_pool()
    inner = pool.loader
    pool.loader = lambda name: loads.append(name) or inner(name)
    c = client_for(pool=pool)
    for _ in range(3):
        assert chat(c, model="a").status_code == 200
    assert chat(c, model="b").status_code == 200
    assert loads == ["a", "b"]
    assert [m["name"] for m in c.get("/health").json()["models"]] == ["a", "b"]
