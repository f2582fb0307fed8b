"""The Chat screen's handler on the scripted fake: streaming, stats, sessions in the ledger."""
from __future__ import annotations

import pytest

from llmlab.config import load_settings
from llmlab.webui import params
from llmlab.webui.lab import LocalLab
from llmlab.webui.screens import chat

from .test_params import DEFAULTS


@pytest.fixture
def lab():
    lab = LocalLab(load_settings(), backend="fake", replies=["안녕하세요, 반갑습니다!", "두 번째 답"])
    yield lab
    lab.close()


def _send(lab, text, turns, display, session="s1", system="짧게 답하세요"):
    return list(chat.send(lab, text, turns, display, "fake", system, session, *DEFAULTS))


def test_answer_streams_then_shows_tokens_and_speed(lab):
    steps = _send(lab, "안녕?", [], [])
    shown = [s[1][-1]["content"] for s in steps]
    assert len(steps) > 3  # placeholder, several pieces, final
    assert any(t and "tok/s" not in t and t != "…" for t in shown[1:-1])
    final = shown[-1]
    assert final.startswith("안녕하세요, 반갑습니다!") and "tok/s" in final and "→" in final
    _, display, turns, session, note, _ = steps[-1]
    assert turns == [{"role": "user", "content": "안녕?"}, {"role": "assistant", "content": "안녕하세요, 반갑습니다!"}]
    assert session == "s1" and "run #" in note


def test_history_goes_to_the_model_and_the_session_resumes(lab):
    _, display, turns, *_ = _send(lab, "하나", [], [])[-1]
    _send(lab, "둘", turns, display)
    with lab.use("fake") as m:
        last_prompt = m.backend.prompts[-1]
    assert "하나" in last_prompt and "안녕하세요" in last_prompt and "짧게 답하세요" in last_prompt
    turns2, display2, system, model = chat.open_session(lab, "s1")
    assert [t["content"] for t in turns2] == ["하나", "안녕하세요, 반갑습니다!", "둘", "두 번째 답"]
    assert system == "짧게 답하세요" and model == "fake"


def test_an_empty_message_does_nothing(lab):
    assert _send(lab, "   ", [], []) == []


def test_a_new_session_gets_a_name(lab):
    *_, session, _, _ = _send(lab, "hi", [], [], session="")[-1]
    assert session.startswith("web-")


def test_bad_parameters_become_a_message_for_the_user(lab):
    gr = pytest.importorskip("gradio")
    values = list(DEFAULTS)
    values[params.NAMES.index("json_schema")] = "{oops"
    with pytest.raises(gr.Error, match="json_schema"):
        list(chat.send(lab, "hi", [], [], "fake", "", "s", *values))
