"""The one decode loop for in-process token-by-token runtimes (llama.cpp, the fake model).

A runtime provides a :class:`SlotEngine`: a KV cache with a few *slots* (sequences); it
can prefill a prompt into a slot, fork a slot, and evaluate one new token for many slots
in one batch. :class:`RequestState` holds everything else about one request, the same
for every runtime: sampling with Hugging Face semantics (:mod:`.sampling`),
``num_return_sequences`` as parallel sequences sharing the prompt, optional constrained
decoding (:mod:`.constrained`), stop strings and UTF-8-safe streaming
(:mod:`.streaming`), log-probabilities, finish reasons and the context budget.
:mod:`.batching` steps the states of all running requests together — a single request
and eight concurrent ones go through exactly the same code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from ..errors import BackendError, ContextOverflowError
from ..types import Delta, GenerationParams, Sequence_, TokenLogprob
from .sampling import Sampler, top_logprobs
from .streaming import TextAssembler


class SlotEngine(Protocol):
    """What a runtime must offer the decode loop (called from one thread only)."""

    n_ctx: int  # cells of the KV cache, shared by all slots
    n_slots: int
    #: a prompt evaluated in a slot reuses the longest start of it cached in *any* slot (not only its own)
    shares_prefixes: bool

    def is_eog(self, token: int) -> bool: ...

    def token_bytes(self, token: int) -> bytes: ...

    def prefix_len(self, slot: int, ids: list[int]) -> int:
        """How many leading tokens of ``ids`` are already cached in ``slot``."""
        ...

    def cached_len(self, slot: int) -> int: ...

    def prefill(self, items: list[tuple[int, list[int]]]) -> list[np.ndarray]:
        """Make each ``slot`` hold exactly its ``ids`` — all prompts evaluated together, in as
        few batched calls as the engine allows; a copy of the logits after each one's last token.
        On failure every slot named is left empty and the error raised."""
        ...

    def fork(self, src: int, dst: int) -> None:
        """Make ``dst`` share ``src``'s cached tokens."""
        ...

    def step(self, entries: list[tuple[int, int]]) -> list[np.ndarray]:
        """Append ``token`` to ``slot`` for each (slot, token), in one batch; their logits
        (valid until the next call that evaluates anything)."""
        ...

    def step_and_prefill(self, entries: list[tuple[int, int]],
                         items: list[tuple[int, list[int]]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """:meth:`step` for ``entries`` and :meth:`prefill` for ``items`` (other slots) in as few
        batched calls as the engine allows: (the step's logits, the prompts' logits). On failure
        nothing is appended for ``entries``, every slot of ``items`` is left empty, and the error raised."""
        ...

    def drop(self, slot: int) -> None:
        """Forget everything cached in ``slot``."""
        ...


def common_prefix_len(a: list[int], b: list[int]) -> int:
    """How many leading tokens two sequences share (for KV-cache prefix reuse)."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


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


@dataclass
class _Seq:
    index: int
    sampler: Sampler
    text: TextAssembler
    constraint: Any = None
    tokens: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None
    eog: bool = False  # ended by the model's end-of-generation token (counted as generated)


class RequestState:
    """One generation request: its sequences, their sampling and text, and when they end.

    ``constraint``: an optional token constraint (see :mod:`.constrained`) cloned for
    every sequence; it masks the logits before sampling.
    """

    def __init__(self, prompt_ids: list[int], params: GenerationParams, *, n_ctx: int,
                 is_eog: Callable[[int], bool], token_bytes: Callable[[int], bytes], piece: Callable[[int], str],
                 constraint: Any = None):
        self.prompt_ids = prompt_ids
        self.params = params
        self.n = params.num_return_sequences
        if params.sampling and params.seed is None:
            params.seed = int(np.random.SeedSequence().entropy % (2**31))
        budget = params.new_token_budget(len(prompt_ids))
        # every sequence needs its own cells for what it generates
        self.budget = max(0, min(budget, (n_ctx - len(prompt_ids)) // self.n))
        self._is_eog, self._token_bytes, self._piece = is_eog, token_bytes, piece
        self.seqs = [
            _Seq(
                index=i,
                sampler=Sampler(params, prompt_ids, np.random.default_rng([params.seed or 0, i])),
                text=TextAssembler(params.stop),
                constraint=constraint.clone() if constraint is not None else None,
                logprobs=[] if params.logprobs is not None else None,
            )
            for i in range(self.n)
        ]
        self.active: list[_Seq] = list(self.seqs) if self.budget > 0 else []
        self.steps = 0
        if self.budget == 0:
            for s in self.seqs:
                s.finish_reason = "length"

    @property
    def done(self) -> bool:
        return not self.active

    @property
    def cells(self) -> int:
        """KV cells this request may occupy at most (the prompt once, then each sequence's tokens)."""
        return len(self.prompt_ids) + self.n * self.budget

    def step(self, logits: list[np.ndarray]) -> tuple[list[Delta], list[tuple[int, int]]]:
        """Choose the next token of every active sequence from its logits.

        Returns the text pieces now safe to show and the (sequence index, token) pairs
        that must be evaluated for the next step.
        """
        deltas: list[Delta] = []
        pending: list[tuple[int, int]] = []
        still: list[_Seq] = []
        last = self.steps == self.budget - 1
        for s, lg in zip(self.active, logits):
            if s.constraint is not None:
                lg = s.constraint.mask(lg)
                if not np.isfinite(lg).any():
                    raise BackendError("constrained decoding reached a state where no token is allowed")
            tok = s.sampler.choose(lg)
            while self._is_eog(tok) and len(s.tokens) < self.params.min_new_tokens:
                lg = np.array(lg, dtype=np.float32, copy=True)  # min_new_tokens: not the end yet
                lg[tok] = -np.inf
                if not np.isfinite(lg).any():
                    break
                tok = s.sampler.choose(lg)
            if s.constraint is not None and not np.isfinite(lg[tok]):
                raise BackendError("the sampler chose a token the output schema forbids (another parameter, such "
                                   "as no_repeat_ngram_size, banned every allowed token); relax that parameter")
            if s.logprobs is not None:
                lp, top = top_logprobs(lg, tok, self.params.logprobs or 0)
                s.logprobs.append(TokenLogprob(self._piece(tok), tok, lp, [(self._piece(t), v) for t, v in top]))
            if self._is_eog(tok):
                s.finish_reason, s.eog = "stop", True
                self._flush(s, deltas)
                continue
            if s.constraint is not None:
                s.constraint.accept(tok)
            s.sampler.accept(tok)
            s.tokens.append(tok)
            out = s.text.push_bytes(self._token_bytes(tok))
            if out:
                deltas.append(Delta(s.index, out))
            if s.text.stopped:
                s.finish_reason = "stop"
                continue
            if last:
                s.finish_reason = "length"
                self._flush(s, deltas)
                continue
            pending.append((s.index, tok))
            still.append(s)
        self.active = still
        self.steps += 1
        return deltas, pending

    def cancel(self) -> None:
        for s in self.active:
            s.finish_reason = "cancelled"
        self.active = []

    @staticmethod
    def _flush(s: _Seq, deltas: list[Delta]) -> None:
        out = s.text.finish()
        if out:
            deltas.append(Delta(s.index, out))

    def result(self) -> list[Sequence_]:
        return [
            Sequence_(text=s.text.text, finish_reason=s.finish_reason or "length",
                      completion_tokens=len(s.tokens) + int(s.eog), logprobs=s.logprobs)
            for s in self.seqs
        ]
