"""Perplexity of a model on a text, through the backend's own decode loop.

The text's tokens are *forced*: a token constraint lets only the next token of the text
through, and before masking it records that token's log-probability under the model's
raw distribution. The generation therefore walks exactly through the text, one forward
pass per token, inside the backend's scheduler (so it never races other requests).
Long texts are scored in windows that fit the context.

Per-token perplexity depends on the tokenizer (a Korean syllable cut into three byte
tokens has two easy-to-guess tokens), so bits per character are reported as well.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import InvalidParameterError, UnsupportedParameterError
from ..models.sampling import log_softmax
from ..types import GenerationParams
from .metrics import perplexity


@dataclass
class PerplexityResult:
    perplexity: float
    tokens: int  # scored tokens
    windows: int
    mean_logprob: float
    bits_per_char: float  # comparable across tokenizers, unlike per-token perplexity


class ForcedTokens:
    """A token constraint that allows only ``targets`` in order and records their log-probabilities."""

    def __init__(self, targets: list[int], sink: list[float]):
        self.targets, self.sink, self.pos = targets, sink, 0

    def mask(self, logits: np.ndarray) -> np.ndarray:
        tok = self.targets[self.pos]
        self.sink.append(float(log_softmax(logits)[tok]))
        out = np.full(logits.shape, -np.inf, dtype=np.float32)
        out[tok] = 0.0
        return out

    def accept(self, token: int) -> None:
        self.pos += 1

    def clone(self) -> "ForcedTokens":
        return ForcedTokens(self.targets, self.sink)  # one sequence: the records go to one list


def _scheduler(model: Any) -> Any:
    if not model.backend.capabilities.perplexity:
        raise UnsupportedParameterError(
            f"perplexity needs a local model that runs llmlab's decode loop (llama.cpp); "
            f"the {model.backend.name!r} backend does not")
    return model.backend.scheduler


def token_logprobs(model: Any, text: str, *, max_tokens: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> tuple[list[float], int]:
    """Natural-log probabilities of the text's tokens (each given all before it in its window)
    and the number of windows used."""
    sched = _scheduler(model)
    ids = model.backend.tokenize(text, add_special=True)
    if max_tokens is not None:
        ids = ids[: max_tokens + 1]
    if len(ids) < 2:
        raise InvalidParameterError("the text is too short to score (it needs at least two tokens)")
    window = max(2, int(model.context_length) - 1)
    out: list[float] = []
    windows = 0
    for start in range(0, len(ids) - 1, window - 1):
        chunk = ids[start : start + window]
        if len(chunk) < 2:
            break
        windows += 1
        params = GenerationParams(max_new_tokens=len(chunk) - 1, temperature=0.0)
        sink: list[float] = []
        for _ in sched.submit(chunk[:1], params, piece=lambda t: "", constraint=ForcedTokens(chunk[1:], sink)):
            pass
        if len(sink) != len(chunk) - 1:  # e.g. a forced token was the model's end-of-generation token
            raise InvalidParameterError(f"could score only {len(sink)} of {len(chunk) - 1} tokens of a window")
        out.extend(sink)
        if progress is not None:
            progress(len(out), len(ids) - 1)
    return out, windows


def text_perplexity(model: Any, text: str, *, max_tokens: int | None = None,
                    progress: Callable[[int, int], None] | None = None) -> PerplexityResult:
    """Perplexity (per token) and bits per character of ``model`` on ``text``."""
    lps, windows = token_logprobs(model, text, max_tokens=max_tokens, progress=progress)
    chars = len(text) if max_tokens is None else len(model.backend.detokenize(
        model.backend.tokenize(text, add_special=False)[:max_tokens]))
    bpc = -sum(lps) / math.log(2) / max(1, chars)
    return PerplexityResult(perplexity(lps), len(lps), windows, round(sum(lps) / len(lps), 6), round(bpc, 4))
