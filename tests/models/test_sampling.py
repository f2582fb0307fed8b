import numpy as np
import pytest

from llmlab.models.sampling import NGramBlocker, Sampler, top_logprobs
from llmlab.types import GenerationParams


def logits_from(d, n=10):
    x = np.full(n, -10.0, dtype=np.float32)
    for k, v in d.items():
        x[k] = v
    return x


def test_greedy_takes_argmax():
    s = Sampler(GenerationParams(temperature=0), [], None)
    assert s.choose(logits_from({3: 5.0, 4: 4.0})) == 3


def test_repetition_penalty_matches_hf_formula():
    p = GenerationParams(temperature=0, repetition_penalty=2.0)
    s = Sampler(p, [3], None)
    out = s.process(logits_from({3: 5.0, 4: 3.0, 5: -1.0}))
    assert out[3] == pytest.approx(2.5) and out[4] == pytest.approx(3.0)
    s.accept(5)
    assert s.process(logits_from({5: -1.0}))[5] == pytest.approx(-2.0)  # negative logits are multiplied
    # penalized token loses to the runner-up
    assert s.choose(logits_from({3: 5.0, 4: 3.0})) == 4


def test_no_repeat_ngram_bans_completing_a_seen_ngram():
    b = NGramBlocker(2, [1, 2, 3, 1])
    assert b.banned() == {2}  # "1 2" was seen, so after 1 the token 2 is banned
    b = NGramBlocker(3, [1, 2, 3, 1, 2])
    assert b.banned() == {3}


def test_top_k_and_top_p_restrict_candidates():
    rng = np.random.default_rng(0)
    lg = logits_from({0: 3.0, 1: 2.9, 2: 2.8, 3: 0.0})
    s = Sampler(GenerationParams(top_k=2), [], rng)
    assert {s.choose(lg) for _ in range(200)} == {0, 1}
    # top_p: token 0 has ~0.99 of the mass
    lg2 = logits_from({0: 10.0, 1: 5.0, 2: 5.0})
    s2 = Sampler(GenerationParams(top_p=0.9, top_k=0), [], rng)
    assert {s2.choose(lg2) for _ in range(200)} == {0}


def test_seeded_sampling_is_reproducible():
    lg = np.linspace(0, 1, 50).astype(np.float32)
    a = [Sampler(GenerationParams(top_k=0), [], np.random.default_rng(7)).choose(lg) for _ in range(5)]
    b = [Sampler(GenerationParams(top_k=0), [], np.random.default_rng(7)).choose(lg) for _ in range(5)]
    assert a == b


def test_logprobs_are_normalized():
    lg = logits_from({1: 2.0, 2: 1.0}, n=4)
    lp, top = top_logprobs(lg, 1, 2)
    assert top[0][0] == 1 and top[1][0] == 2
    total = sum(np.exp(v) for _, v in top)
    assert total < 1.0 and lp == pytest.approx(top[0][1])
