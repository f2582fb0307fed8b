"""Text hygiene at the HTTP door: unencodable text is a 400 that names the field, never a 5xx,
and the connection stays usable; a property test feeds arbitrary Unicode to every text field."""
from __future__ import annotations

import http.client
import json
import typing
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmlab.server import lab_schemas, schemas

from .conftest import live_server, make_app

KEY = "sk-hygiene-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
GEN = {"max_new_tokens": 8, "stop": ["끝"]}

# (path, request model, a valid body that sets every text field the model has)
CASES: list[tuple[str, type, dict]] = [
    ("/v1/chat/completions", schemas.ChatCompletionRequest,
     {"model": "m", "messages": [{"role": "system", "content": "시스템"}, {"role": "user", "name": "u",
                                 "content": [{"type": "text", "text": "안녕"}]}],
      "stop": ["끝"], "user": "u1", "tool_choice": "none", "max_tokens": 8}),
    ("/v1/completions", schemas.CompletionRequest,
     {"model": "m", "prompt": "옛날 옛적에", "suffix": "", "stop": "끝", "user": "u1", "max_tokens": 8}),
    # fields the server refuses (a 400 naming them) get cases of their own, so the cases above reach the model
    ("/v1/chat/completions", schemas.ChatCompletionRequest,
     {"model": "m", "messages": [{"role": "user", "content": "안녕"}], "logit_bias": {"50256": -1.0},
      "tools": [{"type": "function", "function": {"name": "날씨", "description": "오늘 날씨"}}]}),
    ("/v1/completions", schemas.CompletionRequest, {"model": "m", "prompt": "옛날", "logit_bias": {"50256": -1.0}}),
    ("/v1/embeddings", schemas.EmbeddingRequest, {"model": "hash", "input": ["첫째", "둘째"], "user": "u1"}),
    ("/lab/tasks/summarize", lab_schemas.SummarizeRequest,
     {"model": "m", "text": "긴 글입니다. 요약하세요.", "language": "ko", "params": GEN}),
    ("/lab/tasks/translate", lab_schemas.TranslateRequest,
     {"model": "m", "text": "안녕하세요", "to": "en", "source": "ko", "params": GEN}),
    ("/lab/tasks/qa", lab_schemas.QARequest,
     {"model": "m", "context": "서울은 수도다.", "question": "수도는?", "params": GEN}),
    ("/lab/rag/search", lab_schemas.SearchRequest, {"query": "최저임금", "collection": "default"}),
    ("/lab/rag/ask", lab_schemas.AskRequest, {"question": "최저임금은?", "model": "m", "collection": "default",
                                             "params": GEN}),
    ("/lab/rag/ingest", lab_schemas.IngestRequest, {"upload_ids": ["abcdef012345"], "collection": "c1",
                                                   "embedder": "hash"}),
    ("/lab/prompts/grid", lab_schemas.GridRequest,
     {"grid": {"name": "g", "templates": [{"name": "t", "user": "{text}를 번역하세요"}], "models": ["m"],
               "inputs": [{"text": "안녕"}]}}),
    ("/lab/models/load", lab_schemas.ModelRequest, {"model": "m"}),
    ("/lab/logs/purge", lab_schemas.PurgeRequest, {"before": "2020-01-01"}),
    ("/lab/finetune/check", lab_schemas.FinetuneCheckRequest,
     {"upload_id": "abcdef012345", "base": "smollm2-135m", "format": "chat"}),
]


def _texts(value, path=()):
    """Paths of every string in ``value`` (dict keys too, as ("key", path))."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield ("key",) + path + (k,)
            yield from _texts(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _texts(v, path + (i,))


def _replace(value, path, text):
    if path[0] == "key":
        *parent, old = path[1:]
        target = value
        for p in parent:
            target = target[p]
        target[text] = target.pop(old)
        return value
    if not path:
        return text
    target = value
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = text
    return value


def _mentions_str(annotation) -> bool:
    return annotation is str or any(_mentions_str(a) for a in typing.get_args(annotation))


def test_the_cases_set_every_text_field():
    for model in {m for _, m, _ in CASES}:
        text_fields = {name for name, f in model.model_fields.items() if _mentions_str(f.annotation)}
        filled = set().union(*(set(body) for _, m, body in CASES if m is model))
        assert text_fields <= filled, f"{model.__name__}: the property test does not fill {text_fields - filled}"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = make_app(api_keys=[KEY], home=tmp_path_factory.mktemp("hygiene"), max_tokens_ceiling=16)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


# arbitrary Unicode, with lone surrogates, NULs, controls and non-characters well represented
SPECIAL = ["\ud800", "\udfff", "\udc80", "\x00", "\u200b", "\ufeff", "\uffff", "\U0010ffff", "\u202e", "한", "\n"]
TEXT = st.lists(st.one_of(st.characters(), st.sampled_from(SPECIAL)), max_size=40).map("".join)


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_text_in_any_field_gives_a_server_error(client, data):
    path, _, base = data.draw(st.sampled_from(CASES), label="route")
    body = json.loads(json.dumps(base))
    field = data.draw(st.sampled_from(list(_texts(body))), label="field")
    text = data.draw(TEXT, label="text")
    body = _replace(body, field, text)
    r = client.post(path, content=json.dumps(body).encode(), headers=AUTH)  # ASCII JSON: surrogates as \\ud800
    assert r.status_code < 500, (path, field, text, r.text)
    err = r.json().get("error") if r.status_code >= 400 else None
    if r.status_code >= 400:
        assert set(err) >= {"message", "type"}, r.text
    try:
        json.loads(json.dumps(text)).encode("utf-8")  # what the server decodes (a surrogate pair is one code point)
    except UnicodeEncodeError:
        assert r.status_code == 400 and err["code"] == "invalid_text", (path, field, r.text)


@pytest.mark.parametrize("path,body", [
    ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x\ud800y"}]}),
    ("/v1/completions", {"model": "m", "prompt": "x\ud800y"}),
    ("/v1/embeddings", {"model": "hash", "input": ["ok", "x\udfffy"]}),
])
def test_a_lone_surrogate_is_a_400_naming_the_field(client, path, body):
    r = client.post(path, content=json.dumps(body).encode(), headers=AUTH)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["code"] == "invalid_text"
    assert err["param"] in ("messages.0.content", "prompt", "input.1")


def test_the_keep_alive_connection_stays_usable(tmp_path):
    with live_server(make_app(api_keys=[KEY], home=tmp_path)) as url:
        u = urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        bad = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x\ud800y"}]}).encode()
        conn.request("POST", "/v1/chat/completions", body=bad, headers=AUTH)
        r = conn.getresponse()
        assert r.status == 400 and json.loads(r.read())["error"]["code"] == "invalid_text"
        sock = conn.sock
        assert sock is not None and r.getheader("connection", "").lower() != "close"
        good = json.dumps({"model": "m", "messages": [{"role": "user", "content": "안녕"}]}).encode()
        conn.request("POST", "/v1/chat/completions", body=good, headers=AUTH)
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["choices"][0]["message"]["content"]
        assert conn.sock is sock  # the same connection answered both
        conn.close()
