"""Typed data that crosses llmlab's seams: messages, generation parameters, completions.

These are plain dataclasses so that every layer (backends, ledger, CLI, server) speaks
the same vocabulary and ``to_dict`` gives the JSON the CLI prints.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

from .errors import InvalidParameterError

Role = Literal["system", "user", "assistant", "tool"]
ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class Message:
    role: str
    content: str

    def __post_init__(self):
        if self.role not in ROLES:
            raise InvalidParameterError(f"unknown message role {self.role!r}; valid roles: {', '.join(ROLES)}")
        if not isinstance(self.content, str):
            raise InvalidParameterError(f"message content must be text, got {type(self.content).__name__}")

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}

    @classmethod
    def coerce(cls, m: "Message | dict[str, Any]") -> "Message":
        if isinstance(m, Message):
            return m
        try:
            return cls(role=m["role"], content=m["content"])
        except (KeyError, TypeError):
            raise InvalidParameterError(f"a message needs 'role' and 'content', got {m!r}") from None


def coerce_messages(messages: "str | Sequence[Message | dict[str, Any]]") -> list[Message]:
    if isinstance(messages, str):
        return [Message("user", messages)]
    return [Message.coerce(m) for m in messages]


@dataclass
class GenerationParams:
    """The generation controls every learner meets, with Hugging Face ``generate`` semantics.

    * ``max_new_tokens`` bounds the generated tokens; ``max_length`` bounds prompt + generated
      (``max_new_tokens`` wins when both are given). ``min_new_tokens`` keeps the
      end-of-generation token from being chosen before that many tokens (benchmarks use it
      for fixed-length outputs; stop strings still end a sequence).
    * ``do_sample=None`` means: sample when ``temperature > 0``, greedy when it is 0.
      ``do_sample=False`` is greedy whatever the temperature.
    * ``top_k=0`` and ``top_p=1.0`` switch those filters off; ``repetition_penalty=1.0`` is off;
      ``no_repeat_ngram_size=0`` is off.
    * ``seed`` makes sampling reproducible; when sampling without a seed one is drawn and
      reported, so any run can be repeated.
    * ``stop``: strings that end generation; the stop string itself is not returned.
    * ``logprobs``: when set to k ≥ 0, each generated token carries its log-probability and
      the k most likely alternatives.
    * ``truncate``: what to do with a prompt longer than the context window —
      ``"error"`` (default) or ``"left"`` (drop the oldest tokens and report how many).
    * ``json_schema``: constrain the output to JSON matching this schema (the llama.cpp
      backend enforces it while decoding; others validate afterwards).
    """

    max_new_tokens: int | None = None
    max_length: int | None = None
    min_new_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 50
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    num_return_sequences: int = 1
    do_sample: bool | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    logprobs: int | None = None
    truncate: str = "error"
    json_schema: dict[str, Any] | None = None

    DEFAULT_MAX_NEW_TOKENS = 256

    def __post_init__(self):
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = [s for s in (self.stop or []) if s]
        self.validate()

    def validate(self) -> None:
        def bad(name, why):
            raise InvalidParameterError(f"{name}={getattr(self, name)!r}: {why}")

        if self.max_new_tokens is not None and self.max_new_tokens < 0:
            bad("max_new_tokens", "must be ≥ 0")
        if self.min_new_tokens < 0:
            bad("min_new_tokens", "must be ≥ 0 (0 switches it off)")
        if self.max_length is not None and self.max_length < 1:
            bad("max_length", "must be ≥ 1")
        if self.temperature < 0:
            bad("temperature", "must be ≥ 0 (0 means greedy)")
        if 0 < self.temperature < 1e-3:
            bad("temperature", "must be 0 (greedy) or at least 0.001")
        if not 0 < self.top_p <= 1:
            bad("top_p", "must be in (0, 1]")
        if self.top_k < 0:
            bad("top_k", "must be ≥ 0 (0 switches it off)")
        if self.repetition_penalty < 0.01:
            bad("repetition_penalty", "must be at least 0.01 (1.0 switches it off)")
        if self.no_repeat_ngram_size < 0:
            bad("no_repeat_ngram_size", "must be ≥ 0 (0 switches it off)")
        if not 1 <= self.num_return_sequences <= 64:
            bad("num_return_sequences", "must be between 1 and 64")
        if self.logprobs is not None and not 0 <= self.logprobs <= 20:
            bad("logprobs", "must be between 0 and 20")
        if self.truncate not in ("error", "left"):
            bad("truncate", "must be 'error' or 'left'")
        if self.json_schema is not None and not isinstance(self.json_schema, dict):
            bad("json_schema", "must be a JSON object (a dict)")
        if self.num_return_sequences > 1 and not self.sampling:
            # HF refuses this too: greedy decoding gives n identical sequences.
            bad("num_return_sequences", "needs sampling (do_sample=True or temperature > 0); greedy decoding would repeat one sequence")

    @property
    def sampling(self) -> bool:
        """Whether tokens are sampled (True) or chosen greedily (False)."""
        if self.do_sample is None:
            return self.temperature > 0
        return bool(self.do_sample) and self.temperature > 0

    def new_token_budget(self, prompt_tokens: int) -> int:
        """How many tokens may be generated after a prompt of ``prompt_tokens`` tokens."""
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        if self.max_length is not None:
            return max(0, self.max_length - prompt_tokens)
        return self.DEFAULT_MAX_NEW_TOKENS

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "GenerationParams":
        """Build from keyword arguments, rejecting unknown names with the valid list."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise InvalidParameterError(
                f"unknown generation parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        return cls(**{k: v for k, v in kwargs.items() if v is not None or k in ("do_sample", "seed")})


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass
class TokenLogprob:
    """One generated token, its log-probability and the most likely alternatives."""

    token: str
    id: int | None
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "id": self.id,
            "logprob": self.logprob,
            "top": [{"token": t, "logprob": lp} for t, lp in self.top],
        }


@dataclass
class Sequence_:
    """One generated sequence."""

    text: str
    finish_reason: str  # "stop" (eos or stop string) | "length"
    completion_tokens: int
    logprobs: list[TokenLogprob] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "completion_tokens": self.completion_tokens,
        }
        if self.logprobs is not None:
            d["logprobs"] = [lp.to_dict() for lp in self.logprobs]
        return d


@dataclass
class Completion:
    """The result of one generation call (one or more sequences)."""

    sequences: list[Sequence_]
    model: str
    backend: str
    params: GenerationParams
    usage: Usage
    latency_s: float = 0.0
    first_token_s: float | None = None
    threads: int | None = None
    truncated_tokens: int = 0
    chat_template: str | None = None
    run_id: int | None = None

    @property
    def text(self) -> str:
        return self.sequences[0].text if self.sequences else ""

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.sequences]

    @property
    def finish_reason(self) -> str:
        return self.sequences[0].finish_reason if self.sequences else "stop"

    @property
    def tokens_per_s(self) -> float:
        """Decode speed: tokens after the first over the time after the first (the prompt's
        evaluation is not in it, as in llama-bench's tg); end to end when that is unknown."""
        n, t = self.usage.completion_tokens, self.latency_s
        if self.first_token_s is not None and n > 1 and t - self.first_token_s > 0:
            n, t = n - 1, t - self.first_token_s
        if t <= 0:
            return 0.0
        return round(n / t, 3)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "text": self.text,
            "texts": self.texts,
            "finish_reasons": [s.finish_reason for s in self.sequences],
            "model": self.model,
            "backend": self.backend,
            "params": self.params.to_dict(),
            "usage": self.usage.to_dict(),
            "latency_s": round(self.latency_s, 4),
            "first_token_s": None if self.first_token_s is None else round(self.first_token_s, 4),
            "tokens_per_s": self.tokens_per_s,
            "threads": self.threads,
            "truncated_tokens": self.truncated_tokens,
            "run_id": self.run_id,
        }
        if self.chat_template is not None:
            d["chat_template"] = self.chat_template
        if any(s.logprobs is not None for s in self.sequences):
            d["logprobs"] = [[lp.to_dict() for lp in (s.logprobs or [])] for s in self.sequences]
        return d


@dataclass(frozen=True)
class Delta:
    """A piece of streamed text for sequence ``index``; never splits a UTF-8 character."""

    index: int
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class ModelInfo:
    """What llmlab knows about a loaded model."""

    name: str
    backend: str
    context_length: int
    chat_template: str | None = None  # the template source, or None
    chat_template_name: str | None = None  # "model" or "fallback:NAME"
    languages: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
