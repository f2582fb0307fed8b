"""Perplexity through the decode engine, checked on engines with known distributions."""
import numpy as np
import pytest

from llmlab.errors import UnsupportedParameterError
from llmlab.eval.perplexity import text_perplexity


class UniformEngine:
    """Every next token equally likely over a vocabulary of V: perplexity is exactly V."""

    def __init__(self, vocab=258, n_ctx=512):
        self.vocab, self.n_ctx, self.calls = vocab, n_ctx, 0

    def eval_prompt(self, ids, n):
        self.calls += 1
        return np.zeros(self.vocab, dtype=np.float32)

    def eval_next(self, tokens):
        self.calls += 1
        return [np.zeros(self.vocab, dtype=np.float32) for _ in tokens]


class HalfEngine(UniformEngine):
    """Token 'a' (97) gets probability 1/2, the other 257 tokens share the rest."""

    def _lg(self):
        lg = np.zeros(self.vocab, dtype=np.float32)
        lg[97] = np.log(257)  # e^x / (e^x + 257) = 1/2
        return lg

    def eval_prompt(self, ids, n):
        return self._lg()

    def eval_next(self, tokens):
        return [self._lg() for _ in tokens]


def fake_with(engine):
    from llmlab.models.model import load_model

    m = load_model("fake", backend="fake", ledger=False)
    m.backend.engine = engine
    return m


def test_uniform_model_has_perplexity_equal_to_the_vocabulary():
    m = fake_with(UniformEngine())
    r = text_perplexity(m, "안녕하세요")  # BOS + 15 bytes → 15 scored tokens
    assert r.perplexity == pytest.approx(258, rel=1e-4) and r.tokens == 15 and r.windows == 1
    assert r.bits_per_char == pytest.approx(15 * np.log2(258) / 5, rel=1e-4)  # 3 byte tokens per syllable


def test_known_probabilities_by_hand():
    m = fake_with(HalfEngine())
    # "aab": a, a at p=1/2, b at p=1/(2*257): ppl = exp(-(2 ln .5 + ln(1/514)) / 3)
    expected = np.exp(-(2 * np.log(0.5) + np.log(1 / 514)) / 3)
    assert text_perplexity(m, "aab").perplexity == pytest.approx(expected, rel=1e-4)


def test_long_texts_are_scored_in_windows():
    eng = UniformEngine(n_ctx=8)
    r = text_perplexity(fake_with(eng), "abcdefghijklmnopqrst")  # BOS + 20 tokens, windows of 7
    assert r.tokens == 20 and r.windows == 4 and r.perplexity == pytest.approx(258, rel=1e-4)


def test_backends_without_an_engine_say_so():
    from llmlab.models.model import load_model

    with pytest.raises(UnsupportedParameterError, match="decode engine"):
        text_perplexity(load_model("fake", backend="fake", ledger=False), "abc")


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
    assert en.bits_per_char * 3 < ko.bits_per_char
    assert ko.tokens > 2 * en.tokens
