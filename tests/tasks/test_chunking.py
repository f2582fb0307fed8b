"""Splitting long text to fit a token budget."""
import pytest

from llmlab.tasks.chunking import split_sentences, split_to_fit

count = lambda s: len(s.encode("utf-8"))  # noqa: E731  byte tokens, as the fake model counts


def test_sentences_korean_and_english():
    assert split_sentences("첫 문장이다. 둘째 문장이다! Third one? 넷") == ["첫 문장이다.", "둘째 문장이다!", "Third one?", "넷"]


def test_pieces_fit_and_keep_order():
    text = "\n\n".join(f"문단 {i}. 내용이 조금 있습니다." for i in range(10))
    pieces = split_to_fit(text, 100, count)
    assert all(count(p) <= 100 for p in pieces)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    assert len(pieces) < 10  # short paragraphs are packed together


def test_long_sentence_is_cut_by_characters():
    pieces = split_to_fit("가" * 100, 30, count)
    assert all(count(p) <= 30 for p in pieces) and "".join(pieces) == "가" * 100


def test_budget_must_be_positive():
    with pytest.raises(ValueError):
        split_to_fit("x", 0, count)
