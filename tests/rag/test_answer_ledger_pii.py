"""The ``rag`` ledger row follows the PII rules of the model's own row (fake model)."""
from __future__ import annotations

import pytest

import llmlab
from llmlab.config import load_settings
from llmlab.guard.policy import GuardedModel, MaskingLedger
from llmlab.ledger import Ledger
from llmlab.rag.answer import answer_question

PHONE = "010-1234-5678"
QUESTION = f"고양이는 쥐를 잡는 동물이다, 잠을 많이 잔다? 연락은 {PHONE}"



def rows(kind: str):
    ledger = Ledger(load_settings().ledger_path)
    try:
        return ledger.runs(kind=kind)
    finally:
        ledger.close()


def test_mask_policy_stores_the_question_masked_like_the_chat_row(coll):
    m = llmlab.load_model("x", backend="fake", replies=[f"고양이 [1]. 연락처 {PHONE}"], context_length=4096)
    guarded = GuardedModel(m, "mask")
    ans = answer_question(QUESTION, coll, guarded, k=2)
    assert ans.found and PHONE in ans.answer  # the user reads the real value …
    chat, = rows("chat")
    assert PHONE not in str(chat.messages) and "[PHONE_1]" in str(chat.messages)  # … the model saw the placeholder
    rag, = rows("rag")
    assert PHONE not in rag.prompt and "[PHONE_1]" in rag.prompt
    assert PHONE not in rag.output[0] and "[PHONE_1]" in rag.output[0]
    assert rag.meta["generation_run_id"] == chat.id


def test_not_found_answers_are_masked_too(coll):
    m = llmlab.load_model("x", backend="fake", replies=["never"], context_length=4096)
    answer_question(f"양자역학의 불확정성 원리는? {PHONE}", coll, GuardedModel(m, "mask"))
    rag, = rows("rag")
    assert PHONE not in rag.prompt and "[PHONE_1]" in rag.prompt and m.backend.calls == 0


def test_a_masking_ledger_masks_the_rag_row_whatever_the_policy(coll):
    settings = load_settings()
    m = llmlab.load_model("x", backend="fake", replies=["고양이 [1]"], context_length=4096,
                          ledger=MaskingLedger(Ledger(settings.ledger_path)))
    answer_question(QUESTION, coll, GuardedModel(m, "warn"), k=2)  # the model sees the number (warn) …
    rag, = rows("rag")
    assert PHONE not in rag.prompt and "[PHONE_1]" in rag.prompt  # … the ledger still stores it masked
    assert rag.meta.get("pii_masked") == ["phone"]


def test_without_a_mask_policy_the_ledger_still_masks_by_default(coll):
    m = llmlab.load_model("x", backend="fake", replies=["고양이 [1]"], context_length=4096)
    answer_question(QUESTION, coll, GuardedModel(m, "warn"), k=2)
    rag, = rows("rag")
    assert PHONE not in rag.prompt and "[PHONE_1]" in rag.prompt


def test_with_ledger_raw_text_the_question_is_stored_as_asked(coll, monkeypatch):
    monkeypatch.setenv("LLMLAB_LEDGER_RAW_TEXT", "true")
    m = llmlab.load_model("x", backend="fake", replies=["고양이 [1]"], context_length=4096)
    answer_question(QUESTION, coll, GuardedModel(m, "warn"), k=2)
    rag, = rows("rag")
    assert rag.prompt == QUESTION
