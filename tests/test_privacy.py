"""Private by default: after a session full of personal data — the CLI, the Python API, a chat
session, a server request and a RAG question — nothing under LLMLAB_HOME holds it raw."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

# real-looking personal data every detector recognises (valid check digits, a Luhn-valid card)
RRN = "900101-1234568"
PHONE = "010-2345-6789"
CARD = "4111 1111 1111 1111"
EMAIL = "hong.gildong@example.com"
PII = [RRN, PHONE, CARD, EMAIL]
TEXT = f"제 주민번호는 {RRN}이고 전화는 {PHONE}, 카드는 {CARD}, 메일은 {EMAIL} 입니다."


def raw_pii_in(home: Path) -> list[str]:
    """``file: value`` for every raw value found in any file under ``home`` (also digits-only forms)."""
    needles = {v: {v.encode(), v.replace("-", "").replace(" ", "").encode()} for v in PII}
    hits = []
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path.relative_to(home)}: {v}" for v, forms in needles.items() if any(f in data for f in forms)]
    return hits


def test_raw_pii_is_found_when_the_lab_keeps_raw_text(tmp_path, monkeypatch):
    """The check itself works: with ``ledger_raw_text`` on, the same writes leave the values in the file."""
    from llmlab.config import load_settings
    from llmlab.models.model import load_model

    monkeypatch.setenv("LLMLAB_LEDGER_RAW_TEXT", "true")
    settings = load_settings()
    assert settings.ledger_raw_text
    with load_model("m", backend="fake", replies=[f"네, {EMAIL}로 보낼게요."], settings=settings) as m:
        m.generate(TEXT)
    assert {h.split(": ")[1] for h in raw_pii_in(settings.home)} == set(PII)


@pytest.mark.slow
def test_a_pii_laden_session_leaves_no_raw_pii_in_the_lab_home(tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from llmlab.chat import ChatSession
    from llmlab.cli.main import cli
    from llmlab.config import load_settings
    from llmlab.models.model import load_model
    from llmlab.rag.answer import ask
    from llmlab.rag.ingest import ingest

    from .server.conftest import make_app

    home = Path(os.environ["LLMLAB_HOME"])
    monkeypatch.setenv("LLMLAB_THREADS", "1")
    echo = [f"알겠습니다. {TEXT}"]  # the model repeats the personal data back: outputs are masked too

    # the CLI, on the bundled model
    r = CliRunner().invoke(cli, ["generate", TEXT, "--max-new-tokens", "4", "--json"])
    assert r.exit_code == 0, r.output
    # the Python API: a generation and a chat session (its history is stored too)
    with load_model("m", backend="fake", replies=echo * 3) as m:
        m.generate(TEXT)
        ChatSession(m, system=f"사용자 메일: {EMAIL}", session="s1").ask(TEXT)
    # the server, with a key (so records have an owner), and a RAG question over its API
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# 안내\n\n최저임금은 매년 8월 5일까지 결정한다.\n", encoding="utf-8")
    ingest([docs], "t", embedder="hash", tokenizer="simple")
    key = "sk-privacy-0123456789"
    with TestClient(make_app(replies=echo, api_keys=[key])) as c:
        auth = {"Authorization": f"Bearer {key}"}
        r = c.post("/v1/chat/completions", headers=auth,
                   json={"model": "m", "messages": [{"role": "user", "content": TEXT}], "max_tokens": 16})
        assert r.status_code == 200
        r = c.post("/lab/rag/ask", headers=auth, json={"question": TEXT, "model": "m", "collection": "t"})
        assert r.status_code == 200, r.text
    # RAG through the Python API too
    with load_model("m", backend="fake", replies=echo) as m:
        ask(TEXT, "t", model=m, settings=load_settings())

    from llmlab.ledger import Ledger

    led = Ledger(home / "ledger.db")
    try:
        runs = led.runs(100)
        kinds = {r.kind for r in runs}
        assert {"generate", "chat", "rag"} <= kinds, kinds  # every door recorded something
        assert any("[RRN_1]" in (r.prompt or json.dumps(r.messages, ensure_ascii=False)) for r in runs)
        assert "[EMAIL_1]" in led.session("s1")["system"]
    finally:
        led.close()
    hits = raw_pii_in(home)
    assert not hits, f"raw personal data left in the lab home: {hits}"
