"""The one decode loop for in-process token-by-token runtimes (llama.cpp, the fake model).

A runtime provides a :class:`DecodeEngine` (evaluate a prompt, then evaluate one new
token for each of several sequences at once); this module does everything else with the
same code for every such runtime: sampling with Hugging Face semantics
(:mod:`.sampling`), ``num_return_sequences`` as parallel sequences sharing the prompt,
stop strings and UTF-8-safe streaming (:mod:`.streaming`), log-probabilities, finish
reasons and the context-window budget.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

import numpy as np

from ..errors import ContextOverflowError
from ..types import Delta, GenerationParams, Sequence_, TokenLogprob
from .sampling import Sampler, top_logprobs
from .streaming import TextAssembler


class DecodeEngine(Protocol):
    """What a runtime must offer the decode loop."""

    n_ctx: int

    def is_eog(self, token: int) -> bool: ...

    def token_bytes(self, token: int) -> bytes: ...

    def eval_prompt(self, ids: list[int], n_seqs: int) -> np.ndarray:
        """Evaluate the prompt for ``n_seqs`` sequences (slots 0..n-1); logits of its last position."""
        ...

    def eval_next(self, tokens: list[tuple[int, int]]) -> list[np.ndarray]:
        """Append ``token`` to sequence ``slot`` for each (slot, token), in one batch; their logits."""
        ...


@dataclass
class _Seq:
    index: int
    sampler: Sampler
    text: TextAssembler
    tokens: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None
    eog: bool = False  # ended by the model's end-of-generation token (counted as generated)


def fit_prompt(ids: list[int], n_ctx: int, params: GenerationParams) -> tuple[list[int], int]:
    """Check the prompt against the context window: (ids to use, number of tokens dropped).

    ``truncate="error"``: a prompt that leaves no room for one new token is an error.
    ``truncate="left"``: the oldest tokens are dropped so that the prompt and the new-token
    budget fit (the budget counting for at most half of the window).
    """
    if params.truncate == "error":
        if len(ids) < n_ctx:
            return ids, 0
        raise ContextOverflowError(
            f"the prompt has {len(ids)} tokens but the context window holds {n_ctx}; shorten the prompt, "
            f"load the model with a larger context (--context / n_ctx), or pass truncate='left' "
            f"(--truncate left) to drop the oldest tokens"
        )
    room = max(1, min(params.new_token_budget(len(ids)), n_ctx // 2))
    keep = n_ctx - room
    if len(ids) <= keep:
        return ids, 0
    return ids[-keep:], len(ids) - keep


def decode(
    engine: DecodeEngine,
    prompt_ids: list[int],
    params: GenerationParams,
    *,
    piece: Callable[[int], str],
) -> Iterator[Delta | list[Sequence_]]:
    """Generate ``params.num_return_sequences`` sequences after ``prompt_ids``.

    Yields :class:`Delta` pieces as text becomes safe to show, then one list of
    :class:`Sequence_`. ``piece`` renders a token id for log-probability reports.
    Seeds: when sampling without a seed, one is drawn and written into ``params``.
    """
    n = params.num_return_sequences
    if params.sampling and params.seed is None:
        params.seed = int(np.random.SeedSequence().entropy % (2**31))
    budget = params.new_token_budget(len(prompt_ids))
    # every sequence needs its own cells for what it generates
    budget = max(0, min(budget, (engine.n_ctx - len(prompt_ids)) // n))
    seqs = [
        _Seq(
            index=i,
            sampler=Sampler(params, prompt_ids, np.random.default_rng([params.seed or 0, i])),
            text=TextAssembler(params.stop),
            logprobs=[] if params.logprobs is not None else None,
        )
        for i in range(n)
    ]
    if budget == 0:
        for s in seqs:
            s.finish_reason = "length"
        yield [Sequence_(text="", finish_reason="length", completion_tokens=0, logprobs=s.logprobs) for s in seqs]
        return
    first = engine.eval_prompt(prompt_ids, n)
    logits: list[np.ndarray] = [first] * n
    active = list(seqs)
    for step in range(budget):
        pending: list[tuple[int, int]] = []
        still: list[_Seq] = []
        for s, lg in zip(active, logits):
            tok = s.sampler.choose(lg)
            if s.logprobs is not None:
                lp, top = top_logprobs(lg, tok, params.logprobs or 0)
                s.logprobs.append(TokenLogprob(piece(tok), tok, lp, [(piece(t), v) for t, v in top]))
            if engine.is_eog(tok):
                s.finish_reason, s.eog = "stop", True
                out = s.text.finish()
                if out:
                    yield Delta(s.index, out)
                continue
            s.sampler.accept(tok)
            s.tokens.append(tok)
            out = s.text.push_bytes(engine.token_bytes(tok))
            if out:
                yield Delta(s.index, out)
            if s.text.stopped:
                s.finish_reason = "stop"
                continue
            pending.append((s.index, tok))
            still.append(s)
        active = still
        if not active or step == budget - 1:
            break
        logits = engine.eval_next(pending)
    for s in active:
        s.finish_reason = "length"
        out = s.text.finish()
        if out:
            yield Delta(s.index, out)
    yield [
        Sequence_(text=s.text.text, finish_reason=s.finish_reason or "length",
                  completion_tokens=len(s.tokens) + int(s.eog), logprobs=s.logprobs)
        for s in seqs
    ]


class Timer:
    """Wall-clock latency and time to first token of one call."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.first: float | None = None

    def mark_first(self) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.t0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0
