"""Perplexity through the backend's decode loop, checked on engines with known distributions."""
import numpy as np
import pytest

from llmlab.errors import UnsupportedParameterError
from llmlab.eval.perplexity import text_perplexity
from llmlab.models.batching import Scheduler
from llmlab.testing.fakes import N_VOCAB, _FakeEngine


class UniformEngine(_FakeEngine):
    """Every next token equally likely: perplexity is exactly the vocabulary size (258)."""

    def _logits(self, slot):
        return np.zeros(N_VOCAB, dtype=np.float32)


class HalfEngine(_FakeEngine):
    """Token 'a' (97) has probability 1/2; the other 257 tokens share the rest."""

    def _logits(self, slot):
        lg = np.zeros(N_VOCAB, dtype=np.float32)
        lg[97] = np.log(257)  # e^x / (e^x + 257) = 1/2
        return lg


def fake_with(engine_cls, context_length=512):
    from llmlab.models.model import load_model

    m = load_model("fake", backend="fake", ledger=False, context_length=context_length)
    m.backend.scheduler.close()
    m.backend.engine = engine_cls(context_length, 0.0)
    m.backend.scheduler = Scheduler(m.backend.engine)
    return m


def test_uniform_model_has_perplexity_equal_to_the_vocabulary():
    m = fake_with(UniformEngine)
    r = text_perplexity(m, "안녕하세요")  # BOS + 15 bytes → 15 scored tokens
    assert r.perplexity == pytest.approx(258, rel=1e-4) and r.tokens == 15 and r.windows == 1
    assert r.bits_per_char == pytest.approx(15 * np.log2(258) / 5, rel=1e-4)  # 3 byte tokens per syllable


def test_known_probabilities_by_hand():
    # "aab": a, a at p=1/2, b at p=1/(2*257): ppl = exp(-(2 ln 1/2 + ln 1/514) / 3)
    expected = np.exp(-(2 * np.log(0.5) + np.log(1 / 514)) / 3)
    assert text_perplexity(fake_with(HalfEngine), "aab").perplexity == pytest.approx(expected, rel=1e-4)


def test_long_texts_are_scored_in_windows():
    r = text_perplexity(fake_with(UniformEngine, context_length=8), "abcdefghijklmnopqrst")  # BOS + 20, windows of 7
    assert r.tokens == 20 and r.windows == 4 and r.perplexity == pytest.approx(258, rel=1e-4)


def test_a_model_generation_still_works_afterwards():
    m = fake_with(UniformEngine)
    text_perplexity(m, "abc")
    assert m.generate("x", max_new_tokens=3, temperature=0).usage.completion_tokens == 3


def test_backends_without_a_decode_loop_say_so():
    from llmlab.models.capabilities import OPENAI

    class Remote:
        name = "openai"
        capabilities = OPENAI  # declares no perplexity

    class M:
        backend = Remote()

    with pytest.raises(UnsupportedParameterError, match="decode loop"):
        text_perplexity(M(), "abc")


@pytest.mark.slow
def test_bundled_model_perplexity_english_vs_korean():
    from llmlab.models.model import load_model

    m = load_model("smollm2-135m", threads=1, ledger=False)
    try:
        en = text_perplexity(m, "The capital of France is Paris. It is a large city with many museums.")
        ko = text_perplexity(m, "프랑스의 수도는 파리입니다. 박물관이 많은 큰 도시입니다.")
    finally:
        m.close()
    # an English-only model is far less sure of Korean per character — yet its per-token perplexity
    # can be lower, because Korean is cut into many predictable byte-level pieces
    assert 1 < en.perplexity and en.bits_per_char * 3 < ko.bits_per_char
    assert ko.tokens > 2 * en.tokens
