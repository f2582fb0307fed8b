"""The shared decode loop, exercised through the fake backend (byte-level tokens)."""
import pytest

from llmlab.errors import ContextOverflowError
from llmlab.models.model import load_model


def fake(**kw):
    return load_model("fake", backend="fake", ledger=False, **kw)


def test_scripted_reply_streams_korean_whole_characters():
    m = fake(replies=["안녕하세요, 반갑습니다!"])
    s = m.stream_chat("hi", max_new_tokens=100)
    pieces = [d.text for d in s]
    assert "".join(pieces) == "안녕하세요, 반갑습니다!" == s.completion.text
    assert all("\ufffd" not in p for p in pieces)
    assert s.completion.finish_reason == "stop"
    assert s.completion.chat_template == "model"


def test_max_new_tokens_and_finish_reason_length():
    m = fake(replies=["abcdefghij"])
    c = m.generate("x", max_new_tokens=4)
    assert c.text == "abcd" and c.finish_reason == "length" and c.usage.completion_tokens == 4


def test_max_length_counts_prompt_tokens():
    m = fake(replies=["abcdefghij"])
    c = m.generate("xyz", max_length=7)  # BOS + 3 prompt bytes = 4 → 3 new tokens
    assert c.usage.prompt_tokens == 4 and c.text == "abc"


def test_stop_strings_stop_and_are_not_returned():
    m = fake(replies=["one two STOP three"])
    c = m.generate("x", stop=["STOP"], max_new_tokens=50)
    assert c.text == "one two " and c.finish_reason == "stop"


def test_seeded_sampling_reproducible_and_seed_reported():
    m = fake()
    a = m.generate("hello", max_new_tokens=30, seed=123)
    b = m.generate("hello", max_new_tokens=30, seed=123)
    c = m.generate("hello", max_new_tokens=30, seed=124)
    assert a.text == b.text and a.text != c.text
    d = m.generate("hello", max_new_tokens=5)
    assert isinstance(d.params.seed, int)  # drawn and reported so the run can be repeated
    assert m.generate("hello", max_new_tokens=5, seed=d.params.seed).text == d.text


def test_greedy_is_deterministic_without_seed():
    m = fake()
    assert m.generate("abc", max_new_tokens=20, temperature=0).text == m.generate("abc", max_new_tokens=20,
                                                                                    temperature=0).text


def test_no_repeat_ngram_size_holds():
    m = fake()
    for seed in range(5):
        c = m.generate("ab", max_new_tokens=60, no_repeat_ngram_size=2, seed=seed)
        ids = m.tokenize("ab").ids + m.tokenize(c.text).ids
        grams = [tuple(ids[i : i + 2]) for i in range(len(ids) - 1)]
        assert len(grams) == len(set(grams)), c.text


def test_num_return_sequences_gives_distinct_samples_and_streams_each():
    m = fake()
    s = m.stream("abc", max_new_tokens=20, num_return_sequences=3, seed=5)
    by_index = {}
    for d in s:
        by_index[d.index] = by_index.get(d.index, "") + d.text
    c = s.completion
    assert len(c.texts) == 3 and len(set(c.texts)) > 1
    assert [by_index[i] for i in range(3)] == c.texts
    assert c.usage.completion_tokens == sum(x.completion_tokens for x in c.sequences)


def test_logprobs_reported_per_token():
    m = fake(replies=["hi"])
    c = m.generate("x", logprobs=3)
    lps = c.sequences[0].logprobs
    assert [lp.token for lp in lps[:2]] == ["h", "i"] and len(lps[0].top) == 3
    assert lps[0].logprob <= 0 and lps[0].top[0][0] == "h"


def test_context_overflow_is_an_error_or_reported_truncation():
    m = fake(context_length=32)
    with pytest.raises(ContextOverflowError, match="32"):
        m.generate("x" * 100, max_new_tokens=4)
    c = m.generate("x" * 100, max_new_tokens=4, truncate="left")
    assert c.truncated_tokens > 0 and c.usage.prompt_tokens + 4 <= 32


def test_generation_stops_at_context_end():
    m = fake(context_length=16, replies=["abcdefghijklmnopqrstuvwxyz"])
    c = m.generate("xy", max_new_tokens=100)
    assert c.finish_reason == "length" and c.usage.total_tokens <= 16


from llmlab.testing.contract import GenerationContract  # noqa: E402


class TestFakeBackendContract(GenerationContract):
    @pytest.fixture
    def model(self):
        return fake()
