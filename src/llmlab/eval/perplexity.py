"""Perplexity of a model on a text, through the decode loop's engine.

The text is tokenized and fed to the model token by token (in windows that fit the
context); each token's log-probability under the model's prediction is collected.
Per-token perplexity depends on the tokenizer (a Korean syllable split into three byte
tokens has two easy-to-guess tokens), so bits per character are reported as well. An
engine that offers ``score_tokens(ids) -> list[float]`` (all positions in one batch) is
used instead when present.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InvalidParameterError, UnsupportedParameterError
from ..models.sampling import log_softmax
from .metrics import perplexity


@dataclass
class PerplexityResult:
    perplexity: float
    tokens: int  # scored tokens
    windows: int
    mean_logprob: float
    bits_per_char: float  # comparable across tokenizers, unlike per-token perplexity


def _engine(model: Any) -> Any:
    engine = getattr(model.backend, "engine", None)
    if engine is None or not hasattr(engine, "eval_prompt") or not hasattr(engine, "eval_next"):
        raise UnsupportedParameterError(
            f"perplexity needs a local model whose runtime exposes its decode engine (llama.cpp); "
            f"the {model.backend.name!r} backend does not")
    return engine


def token_logprobs(model: Any, text: str, *, max_tokens: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> tuple[list[float], int]:
    """Natural-log probabilities of the text's tokens and the number of windows used."""
    engine = _engine(model)
    ids = model.backend.tokenize(text, add_special=True)
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if len(ids) < 2:
        raise InvalidParameterError("the text is too short to score (it needs at least two tokens)")
    window = max(2, int(engine.n_ctx) - 1)
    lock = getattr(engine, "lock", None) or contextlib.nullcontext()
    out: list[float] = []
    n_windows = 0
    scorer = getattr(engine, "score_tokens", None)
    with lock:
        for start in range(0, len(ids) - 1, window - 1):
            chunk = ids[start : start + window]
            if len(chunk) < 2:
                break
            n_windows += 1
            if scorer is not None:
                out.extend(scorer(chunk))
                continue
            logits = engine.eval_prompt(chunk[:1], 1)
            for i, tok in enumerate(chunk[1:]):
                out.append(float(log_softmax(logits)[tok]))
                if i < len(chunk) - 2:
                    logits = engine.eval_next([(0, tok)])[0]
                if progress is not None:
                    progress(len(out), len(ids) - 1)
    return out, n_windows


def text_perplexity(model: Any, text: str, *, max_tokens: int | None = None,
                    progress: Callable[[int, int], None] | None = None) -> PerplexityResult:
    lps, windows = token_logprobs(model, text, max_tokens=max_tokens, progress=progress)
    chars = len(text) if max_tokens is None else len(model.backend.detokenize(
        model.backend.tokenize(text, add_special=False)[:max_tokens]))
    bpc = -sum(lps) / math.log(2) / max(1, chars)
    return PerplexityResult(perplexity(lps), len(lps), windows, round(sum(lps) / len(lps), 6), round(bpc, 4))
