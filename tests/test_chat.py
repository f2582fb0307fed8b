"""ChatSession: history, trimming to the context window, persisted sessions, template fallback."""
import pytest

from llmlab.chat import ChatSession
from llmlab.errors import ContextOverflowError
from llmlab.ledger import Ledger
from llmlab.models.model import load_model


def test_history_is_sent_and_kept(tmp_path):
    m = load_model("f", backend="fake", ledger=False, replies=["first", "second"])
    cs = ChatSession(m, system="be nice")
    assert cs.ask("hello", max_new_tokens=20).text == "first"
    cs.ask("again", max_new_tokens=20)
    last_prompt = m.backend.prompts[-1]
    assert "be nice" in last_prompt and "hello" in last_prompt and "first" in last_prompt and "again" in last_prompt
    assert [x.role for x in cs.messages] == ["system", "user", "assistant", "user", "assistant"]


def test_history_is_trimmed_to_fit_the_window_keeping_the_system_prompt():
    m = load_model("f", backend="fake", ledger=False, context_length=200, replies=["x" * 30])
    cs = ChatSession(m, system="SYS")
    for i in range(6):
        cs.ask(f"question {i} " + "y" * 20, max_new_tokens=40)
    prompt = m.backend.prompts[-1]
    assert "SYS" in prompt and "question 5" in prompt and "question 0" not in prompt
    assert cs.trimmed_turns > 0
    assert m.count_chat_tokens(cs.messages[:1]) < 200


def test_a_message_too_long_for_the_window_is_an_error():
    m = load_model("f", backend="fake", ledger=False, context_length=64)
    with pytest.raises(ContextOverflowError, match="64"):
        ChatSession(m).ask("z" * 500, max_new_tokens=8)


def test_sessions_resume_from_the_ledger(tmp_path):
    lg = Ledger(tmp_path / "l.db")
    m = load_model("f", backend="fake", ledger=lg, replies=["one", "two"])
    ChatSession(m, system="S", session="study").ask("hi", max_new_tokens=10)
    again = ChatSession(m, session="study")
    assert again.system == "S" and [x.content for x in again.history] == ["hi", "one"]
    again.ask("more", max_new_tokens=10)
    assert "hi" in m.backend.prompts[-1]
    assert [r.session for r in lg.runs()] == ["study", "study"]


def test_model_without_chat_template_reports_the_fallback():
    m = load_model("f", backend="fake", ledger=False, chat_template=None, replies=["ok"])
    c = m.chat("hi", max_new_tokens=5)
    assert c.chat_template == "fallback:plain"
    assert m.backend.prompts[-1] == "User: hi\nAssistant:"
