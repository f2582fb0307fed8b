"""The :class:`Model` handle users hold: generation, streaming, chat and tokenization.

It wraps one :class:`~llmlab.models.base.Backend`, validates parameters, and records
every call in the run ledger. ``load_model`` is the Python equivalent of the CLI's
``--model`` / ``--backend`` flags.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from ..config import Settings, load_settings
from ..errors import LLMLabError
from ..types import Completion, Delta, GenerationParams, Message, coerce_messages
from . import pricing
from .base import BACKENDS, Backend
from .spec import ModelSpec, resolve

log = logging.getLogger(__name__)


@dataclass
class Tokenization:
    ids: list[int]
    tokens: list[str]

    @property
    def count(self) -> int:
        return len(self.ids)

    def to_dict(self) -> dict[str, Any]:
        return {"ids": self.ids, "tokens": self.tokens, "count": self.count}


class Stream:
    """Iterate to get :class:`Delta` pieces; afterwards ``completion`` holds the result."""

    def __init__(self, events: Iterator[Delta | Completion], finish):
        self._events = events
        self._finish = finish
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[Delta]:
        for ev in self._events:
            if isinstance(ev, Completion):
                self.completion = self._finish(ev)
            else:
                yield ev

    def close(self) -> None:
        """Stop generating (e.g. the reader went away)."""
        close = getattr(self._events, "close", None)
        if close:
            close()

    def text(self) -> str:
        """Consume the stream and return the first sequence's text."""
        for _ in self:
            pass
        assert self.completion is not None
        return self.completion.text


class Model:
    """A loaded model: ``generate``, ``stream``, ``chat``, ``stream_chat``, ``tokenize``."""

    def __init__(self, backend: Backend, spec: ModelSpec, settings: Settings, ledger=None):
        self.backend = backend
        self.spec = spec
        self.settings = settings
        self._ledger = ledger
        self._owns_ledger = False  # set by load_model when it opened the ledger
        self._price = pricing.price_for(spec.remote_model, spec.price)

    # -- properties ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def info(self):
        return self.backend.info

    @property
    def context_length(self) -> int:
        return self.backend.info.context_length

    @property
    def ledger(self) -> Any:
        """The run ledger this model records into (``None`` when it records nothing); read-only."""
        return self._ledger

    def __repr__(self) -> str:
        return f"<Model {self.name!r} on {self.backend.name}>"

    # -- generation ----------------------------------------------------------------------
    def generate(self, prompt: str, *, experiment: str | None = None, **params: Any) -> Completion:
        """Complete ``prompt`` (plain completion, no chat template)."""
        s = self._stream(prompt, experiment, params, deltas=False)
        for _ in s:
            pass
        assert s.completion is not None
        return s.completion

    def params(self, **params: Any) -> GenerationParams:
        """The parameters a call uses: the model's recommended defaults, then the caller's values."""
        return GenerationParams.from_kwargs(**{**self.spec.defaults, **params})

    def stream(self, prompt: str, *, experiment: str | None = None, **params: Any) -> Stream:
        return self._stream(prompt, experiment, params, deltas=True)

    def _quiet(self, deltas: bool) -> dict[str, Any]:
        """The backend's keyword for a caller that wants no deltas (generate, chat), where it has one."""
        return {"deltas": False} if not deltas and self.backend.capabilities.quiet else {}

    def _stream(self, prompt: str, experiment: str | None, params: dict[str, Any], *, deltas: bool) -> Stream:
        p = self.params(**params)
        t0 = time.perf_counter()
        events = self.backend.stream(prompt, p, **self._quiet(deltas))
        return Stream(events, lambda c: self._finish(c, t0, kind="generate", prompt=prompt, experiment=experiment))

    def chat(self, messages: str | Sequence[Message | dict], *, session: str | None = None,
             experiment: str | None = None, **params: Any) -> Completion:
        """Answer a conversation (a string is one user message) with the model's chat template."""
        s = self._stream_chat(messages, session, experiment, params, deltas=False)
        for _ in s:
            pass
        assert s.completion is not None
        return s.completion

    def stream_chat(self, messages: str | Sequence[Message | dict], *, session: str | None = None,
                    experiment: str | None = None, **params: Any) -> Stream:
        return self._stream_chat(messages, session, experiment, params, deltas=True)

    def _stream_chat(self, messages: str | Sequence[Message | dict], session: str | None, experiment: str | None,
                     params: dict[str, Any], *, deltas: bool) -> Stream:
        msgs = coerce_messages(messages)
        p = self.params(**params)
        t0 = time.perf_counter()
        events = self.backend.stream_chat(msgs, p, **self._quiet(deltas))
        return Stream(events, lambda c: self._finish(c, t0, kind="chat", messages=msgs, session=session,
                                                     experiment=experiment))

    def tokenize(self, text: str, *, add_special: bool = False) -> Tokenization:
        ids = self.backend.tokenize(text, add_special=add_special)
        return Tokenization(ids=ids, tokens=self.backend.token_strings(ids))

    def count_tokens(self, text: str) -> int:
        return len(self.backend.tokenize(text, add_special=False))

    def count_chat_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens a conversation takes (template included) — for trimming history."""
        return self.backend.count_chat_tokens(list(messages))

    # -- bookkeeping ---------------------------------------------------------------------
    def _finish(self, c: Completion, t0: float, *, kind: str, prompt: str | None = None,
                messages: list[Message] | None = None, session: str | None = None,
                experiment: str | None = None) -> Completion:
        c.latency_s = c.latency_s or (time.perf_counter() - t0)
        c.model = self.name
        if self._ledger is not None and self.settings.ledger:
            from ..ledger import RunRecord

            cost = pricing.cost_usd(self.backend.name, c.usage.prompt_tokens, c.usage.completion_tokens, self._price)
            try:
                c.run_id = self._ledger.record(RunRecord(
                    kind=kind, model=self.name, backend=self.backend.name, params=c.params.to_dict(),
                    prompt=prompt, messages=None if messages is None else [m.to_dict() for m in messages],
                    output=c.texts, prompt_tokens=c.usage.prompt_tokens, completion_tokens=c.usage.completion_tokens,
                    latency_s=round(c.latency_s, 4), cost_usd=cost, session=session, experiment=experiment,
                    meta={"finish_reasons": [s.finish_reason for s in c.sequences],
                          "truncated_tokens": c.truncated_tokens, "chat_template": c.chat_template,
                          "threads": c.threads},
                ))
            except LLMLabError as e:  # a broken ledger (a full disk) must not lose the user's answer
                log.warning("the answer is returned but was not recorded: %s", e)
        return c

    def close(self) -> None:
        """Stop the backend; a ledger this handle opened itself is closed too (flushed to disk)."""
        self.backend.close()
        if self._owns_ledger and self._ledger is not None:
            self._ledger.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_model(name: str | None = None, *, backend: str | None = None, settings: Settings | None = None,
               ledger: Any = True, **options: Any) -> Model:
    """Load a model by name (bundled name, local path, cached repo id or ``openai:MODEL``).

    ``options`` go to the backend: e.g. ``n_ctx``/``threads`` for llama.cpp, ``device``,
    ``dtype``, ``load_in`` ("4bit"/"8bit") for transformers, ``base_url``/``api_key`` for APIs.
    ``ledger=False`` turns recording off for this handle.
    """
    settings = settings or load_settings()
    spec = resolve(name or settings.default_model, settings, backend=backend)
    factory = BACKENDS.get(spec.backend)
    be = factory(spec, settings, **options)
    opened = ledger is True
    if ledger is True:
        from ..ledger import recorder

        try:
            ledger = recorder(settings)
        except LLMLabError as e:  # a full disk must not stop a generation: it runs, unrecorded
            log.warning("answers of %s will not be recorded: %s", spec.name, e)
            ledger = None
    elif ledger is False:
        ledger = None
    model = Model(be, spec, settings, ledger=ledger)
    model._owns_ledger = opened
    return model
