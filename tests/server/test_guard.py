"""The privacy and cost guard in the server: PII leaves masked, answers come back restored.

An ``openai:`` model points at a stub OpenAI API on 127.0.0.1 that records what it
received and echoes the last user message back — so the test sees both sides.
"""
from __future__ import annotations

import json

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import SecretStr

from llmlab.config import load_settings
from llmlab.guard.pii import find_pii
from llmlab.guard.policy import GuardedModel, MaskingLedger, StreamUnmasker
from llmlab.server.pool import default_pool
from llmlab.server.settings import ServerSettings

from .conftest import live_server, parse_sse

PHONE = "010-1234-5678"
ASK = f"제 번호는 {PHONE} 입니다. 이 번호로 연락 주세요."


def stub_api() -> tuple[FastAPI, list[dict]]:
    received: list[dict] = []
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        received.append(body)
        reply = "확인했습니다: " + body["messages"][-1]["content"]
        pieces = [reply[i:i + 3] for i in range(0, len(reply), 3)]  # splits placeholders across events

        def events():
            for p in pieces:
                yield "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": p}}]}) + "\n\n"
            yield "data: " + json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n"
            yield "data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 2000, "completion_tokens": 1000}}) \
                + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app, received


@pytest.fixture
def stub():
    app, received = stub_api()
    with live_server(app) as url:
        yield url + "/v1", received


def api_client(stub_url, **server):
    core = load_settings(api_base=stub_url, api_key=SecretStr("sk-upstream-secret"))
    settings = ServerSettings(ui=False, embedding_models=["hash"], **server)
    from fastapi.testclient import TestClient

    from llmlab.server.app import create_app

    c = TestClient(create_app(settings, core=core, pool=default_pool(core, settings)))
    c.__enter__()
    return c


def ask(c, stream=False):
    return c.post("/v1/chat/completions", json={"model": "openai:gpt-4o-mini", "stream": stream,
                                                 "messages": [{"role": "user", "content": ASK}]})


def test_phone_number_leaves_masked_and_comes_back_restored(stub):
    url, received = stub
    c = api_client(url)
    try:
        r = ask(c)
        assert r.status_code == 200, r.text
        sent = json.dumps(received[-1], ensure_ascii=False)
        assert PHONE not in sent and "[PHONE_1]" in sent
        assert r.json()["choices"][0]["message"]["content"] == "확인했습니다: " + ASK
        assert r.headers["x-llmlab-pii-policy"] == "mask" and r.headers["x-llmlab-pii"] == "phone"
        # streaming: placeholders split across events are restored too
        with c.stream("POST", "/v1/chat/completions", json={
                "model": "openai:gpt-4o-mini", "stream": True,
                "messages": [{"role": "user", "content": ASK}]}) as s:
            events = parse_sse(s.read())
        text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                       for e in events[:-1] if json.loads(e).get("choices"))
        assert text == "확인했습니다: " + ASK
        assert PHONE not in json.dumps(received[-1], ensure_ascii=False)
        # the ledger holds what was sent: masked
        runs = c.get("/lab/logs").json()["runs"]
        assert runs and all(PHONE not in json.dumps(run, ensure_ascii=False) for run in runs)
    finally:
        c.__exit__(None, None, None)


def test_block_policy_refuses_with_400(stub):
    url, received = stub
    c = api_client(url, pii_policy={"openai": "block"})
    try:
        r = ask(c)
        assert r.status_code == 400 and r.json()["error"]["code"] == "pii_blocked"
        assert received == []
    finally:
        c.__exit__(None, None, None)


def test_local_backends_warn_by_default(client_for):
    c = client_for(replies=["네"])
    r = c.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": ASK}]})
    assert r.headers["x-llmlab-pii-policy"] == "warn" and r.headers["x-llmlab-pii"] == "phone"
    assert c.app.state.lab.pool.get_loaded("m").backend.prompts[-1].count(PHONE) == 1  # sent as is


def test_daily_budget_per_key(stub):
    url, received = stub
    key = "sk-budget-test-1"
    c = api_client(url, api_keys=[key], daily_budget_usd=0.0005)
    try:
        h = {"Authorization": f"Bearer {key}"}
        body = {"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        first = c.post("/v1/chat/completions", json=body, headers=h)
        assert first.status_code == 200  # 2000 × 0.15 + 1000 × 0.6 per 1M = $0.0009 > budget
        second = c.post("/v1/chat/completions", json=body, headers=h)
        assert second.status_code == 402
        err = second.json()["error"]
        assert err["code"] == "budget_exceeded" and "resets" in err["message"]
        assert len(received) == 1
        # local models cost nothing and are never refused by the budget
        assert c.post("/v1/embeddings", json={"model": "hash", "input": "x"}, headers=h).status_code == 200
    finally:
        c.__exit__(None, None, None)


# -- the guard's parts ---------------------------------------------------------------------------
@pytest.mark.parametrize("text, kind", [
    ("여권번호: M12345678", "passport"),
    ("passport no. M123A4567", "passport"),
    ("Passport No: 123456789", "passport"),
    ("운전면허 11-12-345678-90", "license"),
    ("면허번호 서울 12-345678-90", "license"),
    ("driver's license 13-05-123456-01", "license"),
])
def test_passport_and_licence_numbers_are_found(text, kind):
    assert [m.type for m in find_pii(text)] == [kind]


@pytest.mark.parametrize("text", [
    "주문번호 X12345678",          # not a passport type letter
    "M1234567 은 7자리",            # too short
    "99-12-345678-90",             # no such licence region
    "제품 코드 123456789",          # nine digits without a passport label
    "serial 11-12-3456-90",        # wrong group lengths
])
def test_lookalikes_are_not_flagged(text):
    assert [m.type for m in find_pii(text) if m.type in ("passport", "license")] == []


def test_stream_unmasker_restores_split_placeholders():
    u = StreamUnmasker({"[PHONE_1]": PHONE, "[EMAIL_12]": "a@b.kr"})
    out = "".join(u.push(p) for p in ["번호 [PH", "ONE_", "1] 와 [", "EMAIL_1", "2]", " [x] [NOTE"]) + u.finish()
    assert out == f"번호 {PHONE} 와 a@b.kr [x] [NOTE"


def test_guarded_model_masks_out_and_restores_in():
    from llmlab.models.model import load_model

    m = load_model("x", backend="fake", ledger=False, replies=["연락처는 [PHONE_1] 입니다"])
    g = GuardedModel(m, "mask")
    c = g.chat([{"role": "user", "content": ASK}], max_new_tokens=64)
    assert PHONE not in m.backend.prompts[-1] and "[PHONE_1]" in m.backend.prompts[-1]
    assert c.text == f"연락처는 {PHONE} 입니다"
    assert g.report.to_dict() == {"policy": "mask", "found": {"phone": 1}}


def test_masking_ledger_stores_masked_text(tmp_path):
    from llmlab.ledger import Ledger, RunRecord

    led = MaskingLedger(Ledger(tmp_path / "l.db"))
    rid = led.record(RunRecord(kind="chat", prompt=ASK, messages=[{"role": "user", "content": ASK}],
                               output=[f"call {PHONE}"]))
    rec = led.get(rid)
    assert PHONE not in json.dumps(rec.to_dict(), ensure_ascii=False)
    assert rec.meta["pii_masked"] == ["phone"]
