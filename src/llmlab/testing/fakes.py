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
from ..models.batching import Scheduler, relay
from ..models.capabilities import FAKE
from ..models.decoding import common_prefix_len, fit_prompt
from ..models.spec import ModelSpec
from ..types import Completion, Delta, GenerationParams, ModelInfo, Usage

BOS, EOS = 256, 257
N_VOCAB = 258
FAKE_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


class _FakeEngine:
    """The fake's SlotEngine: logits from a script or from a hash of the context."""

    shares_prefixes = False  # a slot reuses only what it holds itself

    def __init__(self, context_length: int, delay_s: float, n_slots: int = 8):
        self.n_slots = n_slots
        self.n_ctx = context_length
        self._delay = delay_s
        self._tokens: list[list[int]] = [[] for _ in range(self.n_slots)]
        self._start = [0] * self.n_slots
        self.scripts: dict[int, bytes | None] = {}  # slot -> the reply being played there
        self.queued: dict[tuple[int, ...], list[bytes]] = {}  # prompt -> replies waiting for it, in order
        self.prefill_calls: list[list[int]] = []  # prompt lengths evaluated together, per call

    def is_eog(self, token: int) -> bool:
        return token == EOS

    def token_bytes(self, token: int) -> bytes:
        return bytes([token]) if token < 256 else b""

    def prefix_len(self, slot: int, ids: list[int]) -> int:
        return common_prefix_len(self._tokens[slot], ids)

    def cached_len(self, slot: int) -> int:
        return len(self._tokens[slot])

    def prefill(self, items: list[tuple[int, list[int]]]) -> list[np.ndarray]:
        self.prefill_calls.append([len(ids) for _, ids in items])
        out = []
        for slot, ids in items:
            waiting = self.queued.get(tuple(ids))
            self.scripts[slot] = waiting.pop(0) if waiting else None
            self._tokens[slot] = list(ids)
            self._start[slot] = len(ids)
            out.append(self._logits(slot))
        return out

    def fork(self, src: int, dst: int) -> None:
        self._tokens[dst] = list(self._tokens[src])
        self._start[dst] = self._start[src]
        self.scripts[dst] = self.scripts.get(src)

    def step(self, entries: list[tuple[int, int]]) -> list[np.ndarray]:
        if self._delay:
            time.sleep(self._delay)
        out = []
        for slot, tok in entries:
            self._tokens[slot].append(tok)
            out.append(self._logits(slot))
        return out

    def step_and_prefill(self, entries: list[tuple[int, int]],
                         items: list[tuple[int, list[int]]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        firsts = self.prefill(items)  # may fail before anything is appended for entries
        return self.step(entries), firsts

    def drop(self, slot: int) -> None:
        self._tokens[slot] = []

    def _logits(self, slot: int) -> np.ndarray:
        ctx = self._tokens[slot]
        logits = np.full(N_VOCAB, -5.0, dtype=np.float32)
        script = self.scripts.get(slot)
        if script is not None:
            pos = len(ctx) - self._start[slot]
            target = script[pos] if pos < len(script) else EOS
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
    capabilities = FAKE

    def __init__(self, name: str = "fake", replies: Sequence[str] | None = None, context_length: int = 512,
                 delay_s: float = 0.0, chat_template: str | None = FAKE_TEMPLATE, parallel: int = 8,
                 max_waiting: int = 64, queue_timeout_s: float | None = None):
        self.info = ModelInfo(name=name, backend="fake", context_length=context_length, chat_template=chat_template,
                              languages="none (a test fake)")
        self.replies = list(replies) if replies is not None else None
        self.calls = 0
        self.prompts: list[str] = []
        self.engine = _FakeEngine(context_length, delay_s, parallel)
        self.scheduler = Scheduler(self.engine, max_waiting=max_waiting, queue_timeout_s=queue_timeout_s)

    @classmethod
    def load(cls, spec: ModelSpec, settings: Settings, **options: Any) -> "FakeBackend":
        valid = {"replies", "context_length", "delay_s", "chat_template", "parallel", "max_waiting", "queue_timeout_s"}
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
    def stream(self, prompt: str, params: GenerationParams, _chat: bool = False, *,
               deltas: bool = True) -> Iterator[Delta | Completion]:
        t0 = time.perf_counter()
        self.prompts.append(prompt)
        ids, dropped = fit_prompt(self.tokenize(prompt, add_special=True), self.info.context_length, params)
        if self.replies is not None:
            # replies queue per prompt: the scheduler may run several requests at once
            script = self.replies[self.calls % len(self.replies)].encode("utf-8")
            self.engine.queued.setdefault(tuple(ids), []).append(script)
        self.calls += 1
        events = self.scheduler.submit(ids, params, piece=lambda t: self.token_strings([t])[0], deltas=deltas)
        seqs, first = yield from relay(events, t0)
        yield Completion(sequences=seqs, model=self.info.name, backend=self.name, params=params,
                         usage=Usage(len(ids), sum(s.completion_tokens for s in seqs)),
                         latency_s=time.perf_counter() - t0, first_token_s=first, threads=1, truncated_tokens=dropped)

    def close(self) -> None:
        self.scheduler.close()
