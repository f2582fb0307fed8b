"""`llmlab task …` through click's CliRunner (scripted fake model)."""
import json

import pytest
from click.testing import CliRunner

from llmlab.cli.main import cli


@pytest.fixture
def replies(monkeypatch):
    state = {"replies": ["ok"], "context_length": 2048}

    def open_model(model, backend, load):
        from llmlab.models.model import load_model

        return load_model("fake", backend="fake", ledger=False, replies=state["replies"],
                          context_length=state["context_length"])

    monkeypatch.setattr("llmlab.cli.common.open_model", open_model)
    return state


def invoke(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input)


def test_summarize_stdin_map_reduce(replies):
    replies.update(replies=["요약."], context_length=512)
    doc = "\n\n".join(f"문단 {i}: 서울시는 버스에 와이파이를 설치한다고 밝혔다." for i in range(15))
    r = invoke("task", "summarize", "-", "--style", "bullet", "--max-new-tokens", "8", "--json", input=doc)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["strategy"] == "map-reduce" and out["chunks"] > 1 and out["task"] == "summarize"


def test_translate_text_argument(replies):
    replies["replies"] = ["Hello."]
    out = json.loads(invoke("task", "translate", "안녕하세요.", "--to", "en", "--json").stdout)
    assert out["text"] == "Hello." and out["source_lang"] == "Korean"


def test_qa_not_found(replies, tmp_path):
    ctx = tmp_path / "c.txt"
    ctx.write_text("세종대왕은 1446년에 훈민정음을 반포하였다.", encoding="utf-8")
    replies["replies"] = ["not in the context"]
    r = invoke("task", "qa", "에펠탑은 누가 설계했나?", "--context", str(ctx))
    assert r.stdout.strip() == "not in the context" and "found=False" in r.stderr


def test_classify_and_extract(replies, tmp_path):
    replies["replies"] = ["sports"]
    out = json.loads(invoke("task", "classify", "The striker scored.", "--labels", "economy,sports", "--json").stdout)
    assert out["data"] == {"label": "sports", "valid": True}
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"room": {"type": "integer"}},
                                  "required": ["room"]}), encoding="utf-8")
    replies["replies"] = ['{"room": 301}']
    out = json.loads(invoke("task", "extract", "301호 회의", "--schema", str(schema), "--json").stdout)
    assert out["data"] == {"room": 301} and out["valid"] is True


def test_missing_file_is_an_error(replies, tmp_path):
    r = invoke("task", "summarize", str(tmp_path / "nope.txt"))
    assert r.exit_code == 1 and "not found" in r.stderr
