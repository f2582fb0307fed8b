"""A scripted fake model that runs through llmlab's real decode loop.

Its tokenizer is byte-level (every UTF-8 byte is a token, so Korean characters span
several tokens, exactly the case streaming must handle) and its "model" is either a
script of replies or a deterministic hash of the recent context. Everything else —
sampling, stop strings, streaming, n sequences, log-probabilities, the ledger — is the
production code path, which makes the fake useful for unit tests of every layer.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any, Iterator, Sequence

import numpy as np

from ..config import Settings
from ..errors import InvalidParameterError
from ..models.base import LocalBackend
from ..models.decoding import decode, fit_prompt
from ..models.spec import ModelSpec
from ..types import Completion, Delta, GenerationParams, ModelInfo, Usage

BOS, EOS = 256, 257
N_VOCAB = 258
FAKE_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


class _FakeEngine:
    """The fake's DecodeEngine: logits from a script or from a hash of the context."""

    def __init__(self, backend: "FakeBackend", script: bytes | None):
        self.n_ctx = backend.info.context_length
        self._script = script
        self._ctx: list[list[int]] = []
        self._start = 0
        self._delay = backend.delay_s

    def is_eog(self, token: int) -> bool:
        return token == EOS

    def token_bytes(self, token: int) -> bytes:
        return bytes([token]) if token < 256 else b""

    def eval_prompt(self, ids: list[int], n_seqs: int) -> np.ndarray:
        self._start = len(ids)
        self._ctx = [list(ids) for _ in range(n_seqs)]
        return self._logits(0)

    def eval_next(self, tokens: list[tuple[int, int]]) -> list[np.ndarray]:
        if self._delay:
            time.sleep(self._delay)
        out = []
        for slot, tok in tokens:
            self._ctx[slot].append(tok)
            out.append(self._logits(slot))
        return out

    def _logits(self, slot: int) -> np.ndarray:
        ctx = self._ctx[slot]
        logits = np.full(N_VOCAB, -5.0, dtype=np.float32)
        if self._script is not None:
            pos = len(ctx) - self._start
            target = self._script[pos] if pos < len(self._script) else EOS
            logits[target] = 20.0
            return logits
        # a pseudo-random but deterministic preference over lower-case letters and space
        h = hashlib.blake2b(bytes(t % 256 for t in ctx[-3:]), digest_size=8).digest()
        rng = np.random.default_rng(int.from_bytes(h, "little"))
        letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz ", dtype=np.uint8).astype(np.int64)
        logits[letters] = rng.normal(0.0, 2.0, size=letters.size).astype(np.float32)
        logits[EOS] = -1.0
        return logits


class FakeBackend(LocalBackend):
    """A deterministic in-process model for tests (``load_model("x", backend="fake")``).

    ``replies``: texts returned in turn (cycling) by each call; without replies the
    output is a deterministic function of the context, so sampling parameters matter.
    """

    name = "fake"

    def __init__(self, name: str = "fake", replies: Sequence[str] | None = None, context_length: int = 512,
                 delay_s: float = 0.0, chat_template: str | None = FAKE_TEMPLATE):
        self.info = ModelInfo(name=name, backend="fake", context_length=context_length, chat_template=chat_template,
                              languages="none (a test fake)")
        self.replies = list(replies) if replies is not None else None
        self.calls = 0
        self.prompts: list[str] = []
        self.delay_s = delay_s

    @classmethod
    def load(cls, spec: ModelSpec, settings: Settings, **options: Any) -> "FakeBackend":
        valid = {"replies", "context_length", "delay_s", "chat_template"}
        unknown = set(options) - valid
        if unknown:
            raise InvalidParameterError(f"unknown option(s) for the fake backend: {sorted(unknown)}; valid: {sorted(valid)}")
        return cls(name=spec.name, **options)

    # -- tokenizer -------------------------------------------------------------------------
    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        ids = list(text.encode("utf-8"))
        return [BOS] + ids if add_special else ids

    def detokenize(self, ids: Sequence[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        special = {BOS: "<s>", EOS: "</s>"}
        return [special.get(i) or bytes([i]).decode("utf-8", errors="backslashreplace") for i in ids]

    # -- generation ------------------------------------------------------------------------
    def stream(self, prompt: str, params: GenerationParams, _chat: bool = False) -> Iterator[Delta | Completion]:
        t0 = time.perf_counter()
        self.prompts.append(prompt)
        script = None
        if self.replies is not None:
            script = self.replies[self.calls % len(self.replies)].encode("utf-8")
        self.calls += 1
        ids, dropped = fit_prompt(self.tokenize(prompt, add_special=True), self.info.context_length, params)
        first: float | None = None
        seqs = []
        for ev in decode(_FakeEngine(self, script), ids, params, piece=lambda t: self.token_strings([t])[0]):
            if isinstance(ev, Delta):
                first = first if first is not None else time.perf_counter() - t0
                yield ev
            else:
                seqs = ev
        yield Completion(sequences=seqs, model=self.info.name, backend=self.name, params=params,
                         usage=Usage(len(ids), sum(s.completion_tokens for s in seqs)),
                         latency_s=time.perf_counter() - t0, first_token_s=first, threads=1, truncated_tokens=dropped)
