"""llmlab's own token sampler, with Hugging Face ``generate`` semantics, on NumPy.

Runtimes that lack a control (llama.cpp has no ``no_repeat_ngram_size``, applies its
repetition penalty only to a recent window, and has no multi-sequence sampling in the
Python API) get it from here, so a parameter means the same thing on every local
backend. The order follows transformers: repetition penalty, no-repeat n-gram, then
temperature, top-k and top-p; greedy decoding takes the arg-max of the processed scores.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..types import GenerationParams

NEG_INF = np.float32(-np.inf)


class NGramBlocker:
    """Tracks every n-gram of a token sequence; bans tokens that would repeat one."""

    def __init__(self, n: int, tokens: list[int]):
        self.n = n
        self.seen: dict[tuple[int, ...], set[int]] = defaultdict(set)
        self.tokens: list[int] = []
        for t in tokens:
            self.push(t)

    def push(self, token: int) -> None:
        self.tokens.append(token)
        if len(self.tokens) >= self.n:
            gram = self.tokens[-self.n :]
            self.seen[tuple(gram[:-1])].add(gram[-1])

    def banned(self) -> set[int]:
        if len(self.tokens) + 1 < self.n:
            return set()
        prefix = tuple(self.tokens[len(self.tokens) - self.n + 1 :]) if self.n > 1 else ()
        return self.seen.get(prefix, set())


class Sampler:
    """Chooses the next token of one sequence.

    ``context`` is the prompt's token ids; every chosen token must be passed to
    :meth:`accept` so penalties and n-gram bans see it (as in transformers, both look at
    the prompt and the generated tokens).
    """

    def __init__(self, params: GenerationParams, context: list[int], rng: np.random.Generator | None):
        self.p = params
        self.sampling = params.sampling
        self.rng = rng if rng is not None else np.random.default_rng()
        self._penalize = params.repetition_penalty != 1.0
        self._seen_ids: set[int] = set(context) if self._penalize else set()
        self._seen_arr: np.ndarray | None = None
        self._ngrams = NGramBlocker(params.no_repeat_ngram_size, context) if params.no_repeat_ngram_size > 0 else None

    def accept(self, token: int) -> None:
        if self._penalize and token not in self._seen_ids:
            self._seen_ids.add(token)
            self._seen_arr = None
        if self._ngrams is not None:
            self._ngrams.push(token)

    def process(self, logits: np.ndarray) -> np.ndarray:
        """Scores after repetition penalty and n-gram bans (before temperature/top-k/top-p)."""
        if not self._penalize and self._ngrams is None:
            return logits
        scores = np.array(logits, dtype=np.float32, copy=True)
        if self._penalize and self._seen_ids:
            if self._seen_arr is None:
                self._seen_arr = np.fromiter(self._seen_ids, dtype=np.int64, count=len(self._seen_ids))
            idx = self._seen_arr[self._seen_arr < scores.shape[0]]
            s = scores[idx]
            pen = np.float32(self.p.repetition_penalty)
            scores[idx] = np.where(s < 0, s * pen, s / pen)
        if self._ngrams is not None:
            banned = self._ngrams.banned()
            if banned:
                scores[np.fromiter(banned, dtype=np.int64, count=len(banned))] = NEG_INF
        return scores

    def choose(self, logits: np.ndarray) -> int:
        """Pick the next token from raw logits (a 1-D float array over the vocabulary)."""
        scores = self.process(logits)
        if not self.sampling:
            return int(np.argmax(scores))
        return self._sample(scores)

    def _sample(self, scores: np.ndarray) -> int:
        p = self.p
        scores = scores.astype(np.float32, copy=False) / np.float32(p.temperature)
        # candidate set: top-k first (cheap partial sort), then top-p on what is left
        if 0 < p.top_k < scores.shape[0]:
            cand = np.argpartition(scores, -p.top_k)[-p.top_k :]
            kth = scores[cand].min()
            # keep ties with the k-th score, as transformers does
            cand = np.flatnonzero(scores >= kth)
        else:
            cand = np.flatnonzero(np.isfinite(scores))
        if cand.size == 0:  # everything banned: fall back to the raw arg-max
            return int(np.argmax(scores))
        cs = scores[cand].astype(np.float64)
        order = np.argsort(-cs, kind="stable")
        cand, cs = cand[order], cs[order]
        probs = np.exp(cs - cs[0])
        probs /= probs.sum()
        if p.top_p < 1.0:
            cum = np.cumsum(probs)
            # smallest prefix whose mass reaches top_p (always at least one token)
            keep = int(np.searchsorted(cum, p.top_p, side="left")) + 1
            cand, probs = cand[:keep], probs[:keep]
            probs = probs / probs.sum()
        return int(cand[self.rng.choice(cand.size, p=probs)])


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64, copy=False)
    m = np.max(x[np.isfinite(x)]) if np.isfinite(x).any() else 0.0
    return x - m - np.log(np.sum(np.exp(x - m)))


def top_logprobs(logits: np.ndarray, token: int, k: int) -> tuple[float, list[tuple[int, float]]]:
    """The log-probability of ``token`` under the model's distribution and the top-``k`` alternatives."""
    lp = log_softmax(logits)
    top: list[tuple[int, float]] = []
    if k > 0:
        idx = np.argpartition(lp, -k)[-k:]
        idx = idx[np.argsort(-lp[idx])]
        top = [(int(i), float(lp[i])) for i in idx]
    return float(lp[token]), top
