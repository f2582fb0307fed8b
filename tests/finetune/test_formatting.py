"""The chat template rendering and the assistant-only loss mask."""
from __future__ import annotations

import pytest

from llmlab.finetune.data import Example
from llmlab.finetune.formatting import Formatter, choose_pad_token
from llmlab.types import Message

from .conftest import CharTokenizer


def trained_text(enc) -> str:
    return "".join(s["text"] for s in enc.segments() if s["train"])


def test_only_the_answer_and_its_end_token_are_trained(char_tokenizer):
    f = Formatter(char_tokenizer)
    enc = f.encode(Example(1, messages=[Message("user", "질문"), Message("assistant", "답변")]))
    assert enc.text == "<|im_start|>user\n질문<|im_end|>\n<|im_start|>assistant\n답변<|im_end|>\n"
    assert trained_text(enc) == "답변<|im_end|>\n"
    assert enc.trained == 4  # 답, 변, <|im_end|>, \n
    assert "".join(s["text"] for s in enc.segments()) == enc.text


def test_every_assistant_turn_is_trained(char_tokenizer):
    msgs = [Message("system", "s"), Message("user", "q1"), Message("assistant", "a1"), Message("user", "q2"),
            Message("assistant", "a2")]
    enc = Formatter(char_tokenizer).encode(Example(1, messages=msgs))
    assert [s["text"] for s in enc.segments() if s["train"]] == ["a1<|im_end|>\n", "a2<|im_end|>\n"]


def test_plain_text_trains_every_token_and_ends_with_eos(char_tokenizer):
    enc = Formatter(char_tokenizer).encode(Example(1, text="문서"))
    assert enc.text == "문서<|im_end|>" and enc.mask == [1, 1, 1]


def test_template_that_rewrites_earlier_turns_trains_the_last_answer():
    # drops every assistant message but the last one (like templates that strip old reasoning)
    template = ("{% for m in messages %}{% if m['role'] != 'assistant' or loop.last %}"
                "{{ m['role'] }}: {{ m['content'] }}\n{% endif %}{% endfor %}"
                "{% if add_generation_prompt %}assistant: {% endif %}")
    f = Formatter(CharTokenizer(chat_template=template))
    msgs = [Message("user", "q1"), Message("assistant", "a1"), Message("user", "q2"), Message("assistant", "a2")]
    enc = f.encode(Example(1, messages=msgs))
    assert "only 1 of 2 answers" in enc.note
    assert trained_text(enc) == "a2\n"


def test_model_without_template_gets_the_named_fallback():
    f = Formatter(CharTokenizer(chat_template=None))
    assert f.template_name == "fallback:chatml"


def test_pad_token_differs_from_eos(char_tokenizer):
    choose_pad_token(char_tokenizer)
    assert char_tokenizer.pad_token == "<|endoftext|>"


@pytest.mark.slow
def test_real_template_mask(real_tokenizer):
    """SmolLM2's own template (with its default system prompt) and byte-level BPE offsets."""
    f = Formatter(real_tokenizer)
    enc = f.encode(Example(1, messages=[Message("user", "세 가지 기본 색은?"), Message("assistant", "빨강, 파랑, 노랑입니다.")]))
    assert f.template_name == "model"
    assert enc.text.startswith("<|im_start|>system\n")
    assert trained_text(enc) == "빨강, 파랑, 노랑입니다.<|im_end|>\n"
    ids = [i for i, m in zip(enc.input_ids, enc.mask) if m]
    assert real_tokenizer.decode(ids) == "빨강, 파랑, 노랑입니다.<|im_end|>\n"
