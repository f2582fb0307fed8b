"""Typed data that crosses llmlab's seams: messages, generation parameters, completions.

These are plain dataclasses so that every layer (backends, ledger, CLI, server) speaks
the same vocabulary and ``to_dict`` gives the JSON the CLI prints.
"""
from __future__ import annotations

import dataclasses
import numbers
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


@dataclass(frozen=True)
class ParamSpec:
    """The rules and help of one generation parameter — what every door is generated from.

    :class:`GenerationParams` keeps one in each field's metadata (``dataclasses.fields(...)[i]
    .metadata["spec"]``); the CLI's options, the server's request models and the web UI's controls
    are built from these, so a range or a help text is written once.
    """

    kind: type  # int, float, bool, str, list or dict (the value's type; None is "unset" when allowed)
    ko: str  # one-line help in Korean
    en: str  # the same in English
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False  # top_p: > 0, not ≥ 0
    #: a positive value must be at least this (temperature: 0 is greedy, a tiny positive one
    #: overflows the softmax)
    smallest_positive: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False  # None is a valid value ("unset")
    step: float | None = None  # the web UI's slider step; None: a box, not a slider

    def rule(self) -> str:
        """The accepted values in words (used in every door's error and help)."""
        if self.choices:
            return "one of " + ", ".join(map(repr, self.choices))
        lo, hi = self.minimum, self.maximum
        if lo is None and hi is None:
            return _KIND_WORDS[self.kind]
        if self.smallest_positive is not None:
            return f"0 or {_num(self.smallest_positive)}–{_num(hi)}" if hi is not None else \
                f"0 or at least {_num(self.smallest_positive)}"
        if hi is None:
            return f"> {_num(lo)}" if self.exclusive_minimum else f"≥ {_num(lo)}"
        return f"in ({_num(lo)}, {_num(hi)}]" if self.exclusive_minimum else f"{_num(lo)}–{_num(hi)}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is refused (``None`` when it is accepted)."""
        if value is None:
            return None if self.optional else "must be set"
        if self.kind is float:  # numbers.Real / Integral: NumPy scalars from a sweep are numbers too
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        elif self.kind is int:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        else:
            ok = isinstance(value, self.kind)
        if not ok:
            return f"must be {_KIND_WORDS[self.kind]}, got {type(value).__name__}"
        if self.choices:
            return None if value in self.choices else f"must be {self.rule()}"
        if self.kind not in (int, float):
            return None
        lo, hi = self.minimum, self.maximum
        below = lo is not None and (value <= lo if self.exclusive_minimum else value < lo)
        tiny = self.smallest_positive is not None and 0 < value < self.smallest_positive
        if below or tiny or (hi is not None and value > hi) or value != value:  # value != value: NaN
            return f"must be {self.rule()}"
        return None

    def help(self) -> str:
        """``"한국어 / English"`` — the two-language line the web UI shows under a control."""
        return f"{self.ko} / {self.en}"


_KIND_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text", list: "a list",
               dict: "a JSON object (a dict)"}


def _num(x: float | None) -> str:
    return "" if x is None else (f"{x:g}" if abs(x) < 1e15 else f"2^{int(x).bit_length()}−1")


def _param(default: Any, spec: ParamSpec, *, factory: Any = None) -> Any:
    meta = {"spec": spec}
    return field(default_factory=factory, metadata=meta) if factory else field(default=default, metadata=meta)


SEED_MAX = 2**63 - 1


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

    Each field's type, range and Korean/English help live in its :class:`ParamSpec`
    (:meth:`specs`); the CLI flags, the server's request models and the web UI's controls are
    generated from them.
    """

    max_new_tokens: int | None = _param(None, ParamSpec(
        int, "새로 만들 토큰 수의 상한 (비우면 256)", "the most tokens to generate (unset: 256)",
        minimum=0, optional=True))
    max_length: int | None = _param(None, ParamSpec(
        int, "프롬프트+답의 토큰 상한 (비우면 끔, max_new_tokens가 우선)",
        "prompt + answer tokens at most (unset: off; max_new_tokens wins)", minimum=1, optional=True))
    min_new_tokens: int = _param(0, ParamSpec(
        int, "이만큼 만들기 전에는 끝 토큰이 나와도 멈추지 않음 (0 = 끔; 고정 길이 벤치마크)",
        "do not stop at an end token before this many new tokens (0 = off; fixed-length benchmarks)",
        minimum=0))
    temperature: float = _param(1.0, ParamSpec(
        float, "높을수록 다양하고 낮을수록 결정적 (0 = 가장 그럴듯한 토큰만)",
        "higher is more varied, lower more deterministic (0 = greedy)",
        minimum=0, maximum=5, smallest_positive=0.01, step=0.01))
    top_p: float = _param(1.0, ParamSpec(
        float, "누적 확률이 p가 될 때까지의 후보만 뽑기 (1 = 끔)",
        "sample only from the smallest set holding this much probability (1 = off)",
        minimum=0, maximum=1, exclusive_minimum=True, step=0.01))
    top_k: int = _param(50, ParamSpec(
        int, "가장 그럴듯한 k개 토큰 중에서만 뽑기 (0 = 끔)", "sample among the k most likely tokens (0 = off)",
        minimum=0, maximum=100_000))
    repetition_penalty: float = _param(1.0, ParamSpec(
        float, "1보다 크면 이미 나온 토큰을 덜 쓰게 함 (1 = 끔)", "above 1 discourages tokens already used (1 = off)",
        minimum=0.01, maximum=10, step=0.01))
    no_repeat_ngram_size: int = _param(0, ParamSpec(
        int, "이 길이의 n-gram을 두 번 만들지 않음 (0 = 끔)", "never repeat an n-gram of this size (0 = off)",
        minimum=0, maximum=64, step=1))
    num_return_sequences: int = _param(1, ParamSpec(
        int, "독립적으로 뽑을 답의 개수 (샘플링 필요)", "independent answers to sample (needs sampling)",
        minimum=1, maximum=64, step=1))
    do_sample: bool | None = _param(None, ParamSpec(
        bool, "auto(비움): temperature > 0이면 샘플링 · greedy: 항상 최댓값",
        "auto (unset): sample when temperature > 0 · greedy: always the most likely token", optional=True))
    seed: int | None = _param(None, ParamSpec(
        int, "같은 시드 = 같은 샘플 (비우면 무작위로 정해 기록)",
        "same seed, same sample (unset: one is drawn and recorded)", minimum=0, maximum=SEED_MAX, optional=True))
    stop: list[str] = _param(None, ParamSpec(
        list, "이 문자열이 나오면 멈춤 (출력에는 빠짐)", "stop at any of these strings (not included in the output)"),
        factory=list)
    logprobs: int | None = _param(None, ParamSpec(
        int, "토큰마다 로그 확률과 상위 k개 후보를 보여 줌 (비우면 끔)",
        "show each token's log-probability and the k most likely alternatives (unset: off)",
        minimum=0, maximum=20, optional=True))
    truncate: str = _param("error", ParamSpec(
        str, "프롬프트가 문맥 창보다 길 때: error = 오류, left = 앞부분을 잘라냄",
        "prompt longer than the context window: error, or drop the oldest tokens (left)", choices=("error", "left")))
    json_schema: dict[str, Any] | None = _param(None, ParamSpec(
        dict, "이 JSON 스키마에 맞는 JSON만 만들게 함 (비우면 끔)",
        "constrain the output to JSON matching this schema (unset: off)", optional=True))

    DEFAULT_MAX_NEW_TOKENS = 256

    def __post_init__(self):
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = [s for s in (self.stop or []) if s]
        self.validate()

    @classmethod
    def specs(cls) -> dict[str, ParamSpec]:
        """Every parameter's :class:`ParamSpec`, in field order (the source of every door's rules)."""
        return {f.name: f.metadata["spec"] for f in dataclasses.fields(cls)}

    @classmethod
    def spec(cls, name: str) -> ParamSpec:
        """One parameter's :class:`ParamSpec` (an unknown name lists the valid ones)."""
        specs = cls.specs()
        if name not in specs:
            raise InvalidParameterError(f"unknown generation parameter {name!r}; valid: {', '.join(sorted(specs))}")
        return specs[name]

    @classmethod
    def check(cls, name: str, value: Any) -> None:
        """Refuse one value that breaks its parameter's rule (what the CLI and the server call per field)."""
        why = cls.spec(name).problem(value)
        if why:
            err = InvalidParameterError(f"{name}={value!r}: {why}")
            err.param = name  # type: ignore[attr-defined]
            raise err

    def validate(self) -> None:
        for name in self.specs():
            self.check(name, getattr(self, name))
        if self.stop and not all(isinstance(s, str) for s in self.stop):
            raise InvalidParameterError(f"stop={self.stop!r}: must be a list of strings")
        if self.num_return_sequences > 1 and not self.sampling:
            # HF refuses this too: greedy decoding gives n identical sequences.
            raise InvalidParameterError(
                f"num_return_sequences={self.num_return_sequences}: needs sampling (do_sample=True or "
                "temperature > 0); greedy decoding would repeat one sequence")

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


class ReaderSignal:
    """Not a piece of output: what a local stream yields to a reader that must not block.

    Only a stream read through :func:`llmlab.models.streaming.reading` yields these (the
    server's event loop reads its llama.cpp streams that way); every layer that wraps a
    stream passes them through untouched. Plain iteration never sees one.
    """

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


#: nothing is ready yet; the reader is woken (``Reader.wake``) when something is
PENDING = ReaderSignal("PENDING")
#: what follows may block (the end of a stream: the result, the ledger's record): read it in a thread
HANDOFF = ReaderSignal("HANDOFF")


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
