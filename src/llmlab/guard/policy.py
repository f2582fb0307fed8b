"""PII policy per backend: what happens to personal data on its way to a model.

``off`` sends text as it is; ``warn`` sends it but reports which kinds of PII it saw;
``mask`` replaces each value with a typed placeholder (``[PHONE_1]``) before the model
sees it and puts the value back in the answer the user reads; ``block`` refuses the
request. External API backends default to ``mask`` (the values never leave the machine),
local ones to ``warn``. :class:`GuardedModel` applies a policy to a loaded model without
changing it, so tasks, RAG and the server all go through the same guard. Since the model
only ever sees masked text, the run ledger records it masked too; :class:`MaskingLedger`
masks what a ledger stores for any backend.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from collections import Counter
from typing import Any, Iterator, Literal, Sequence

from ..errors import InvalidParameterError
from ..types import Completion, Delta, Message, ReaderSignal, coerce_messages
from . import pii_extra  # noqa: F401  (registers the passport and licence detectors)
from .pii import DEFAULT_MIN_CONFIDENCE, Masker, find_pii, unmask

log = logging.getLogger(__name__)

Policy = Literal["off", "warn", "mask", "block"]
POLICIES: tuple[str, ...] = ("off", "warn", "mask", "block")


def default_policy(backend: str) -> str:
    """``mask`` for backends whose requests leave this machine (they declare
    ``capabilities.remote``: the API backends), ``warn`` for models running here."""
    from ..models.base import backend_capabilities

    return "mask" if backend_capabilities(backend).remote else "warn"


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise InvalidParameterError(f"unknown PII policy {policy!r}; valid: {', '.join(POLICIES)}")
    return policy


class PiiBlockedError(InvalidParameterError):
    """The request holds personal data and the policy for this backend is ``block``."""

    code = "pii_blocked"


# -- restoring placeholders in a stream ---------------------------------------------------
_PARTIAL = re.compile(r"\[[A-Z]*(?:_\d*)?$")
_MAX_HELD = 32  # a placeholder is never longer than this; anything longer is plain text


class StreamUnmasker:
    """Puts original values back into streamed text, even when a placeholder spans pieces.

    Text that could still turn into a placeholder (``"[PHO"``) is held back until the
    next piece decides it; :meth:`finish` flushes the rest.
    """

    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping
        self._buf = ""

    def push(self, text: str) -> str:
        if not self.mapping:
            return text
        self._buf += text
        cut = len(self._buf)
        m = _PARTIAL.search(self._buf, max(0, len(self._buf) - _MAX_HELD))
        if m is not None:
            cut = m.start()
        out, self._buf = self._buf[:cut], self._buf[cut:]
        return unmask(out, self.mapping)

    def finish(self) -> str:
        out, self._buf = self._buf, ""
        return unmask(out, self.mapping)


# -- a model seen through a policy ----------------------------------------------------------
@dataclasses.dataclass
class GuardReport:
    """What the guard saw in one request: the policy and PII counts per type (never values)."""

    policy: str
    found: Counter = dataclasses.field(default_factory=Counter)

    @property
    def types(self) -> list[str]:
        return sorted(self.found)

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "found": dict(sorted(self.found.items()))}


class GuardedStream:
    """A :class:`~llmlab.models.model.Stream` whose deltas and completion are unmasked."""

    def __init__(self, stream: Any, masker: Masker | None):
        self._stream = stream
        self._masker = masker
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[Delta]:
        mapping = self._masker.mapping if self._masker is not None else {}
        unmaskers: dict[int, StreamUnmasker] = {}
        for d in self._stream:
            if not mapping or isinstance(d, ReaderSignal):
                yield d
                continue
            u = unmaskers.setdefault(d.index, StreamUnmasker(mapping))
            text = u.push(d.text)
            if text:
                yield Delta(d.index, text)
        for i, u in sorted(unmaskers.items()):
            tail = u.finish()
            if tail:
                yield Delta(i, tail)
        c = self._stream.completion
        if c is not None and mapping:
            c = dataclasses.replace(c, sequences=[dataclasses.replace(s, text=unmask(s.text, mapping))
                                                  for s in c.sequences])
        self.completion = c

    def close(self) -> None:
        self._stream.close()

    def text(self) -> str:
        for _ in self:
            pass
        assert self.completion is not None
        return self.completion.text


class GuardedModel:
    """A loaded model behind a PII policy; everything else is the model's own.

    One instance serves one request or conversation: its masker numbers placeholders
    consistently across the messages it sees, so ``[PHONE_1]`` means the same number
    in the question and in the answer.
    """

    def __init__(self, model: Any, policy: str | None = None, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE):
        self._model = model
        self.policy = check_policy(policy or default_policy(model.backend.name))
        self.min_confidence = min_confidence
        self.masker = Masker(min_confidence=min_confidence) if self.policy == "mask" else None
        self.report = GuardReport(self.policy)

    def __getattr__(self, name: str) -> Any:  # name, spec, backend, settings, tokenize, …
        return getattr(self._model, name)

    def __repr__(self) -> str:
        return f"<GuardedModel {self._model!r} pii={self.policy}>"

    @property
    def model(self) -> Any:
        """The model underneath."""
        return self._model

    def outgoing(self, text: str) -> str:
        """``text`` as the model may see it under this policy (raises for ``block``)."""
        if self.policy == "off" or not text:
            return text
        found = find_pii(text, min_confidence=self.min_confidence)
        if not found:
            return text
        self.report.found.update(m.type for m in found)
        if self.policy == "block":
            kinds = ", ".join(sorted({m.type for m in found}))
            raise PiiBlockedError(f"the request contains personal data ({kinds}) and the PII policy for the "
                                  f"{self._model.backend.name} backend is 'block'; remove it or ask the operator "
                                  "to use 'mask'")
        if self.policy == "warn":
            log.warning("request to %s contains personal data (%s); policy 'warn' sends it unmasked",
                        self._model.name, ", ".join(sorted({m.type for m in found})))
            return text
        assert self.masker is not None
        return self.masker.mask(text)

    def outgoing_messages(self, messages: str | Sequence[Message | dict]) -> list[Message]:
        return [Message(m.role, self.outgoing(m.content)) for m in coerce_messages(messages)]

    def restore(self, text: str) -> str:
        """Put masked values back (what the user reads)."""
        return unmask(text, self.masker.mapping) if self.masker is not None else text

    # -- the Model interface ---------------------------------------------------------------
    def stream(self, prompt: str, **kwargs: Any) -> GuardedStream:
        return GuardedStream(self._model.stream(self.outgoing(prompt), **kwargs), self.masker)

    def stream_chat(self, messages: str | Sequence[Message | dict], **kwargs: Any) -> GuardedStream:
        return GuardedStream(self._model.stream_chat(self.outgoing_messages(messages), **kwargs), self.masker)

    def generate(self, prompt: str, **kwargs: Any) -> Completion:
        s = self.stream(prompt, **kwargs)
        for _ in s:
            pass
        assert s.completion is not None
        return s.completion

    def chat(self, messages: str | Sequence[Message | dict], **kwargs: Any) -> Completion:
        s = self.stream_chat(messages, **kwargs)
        for _ in s:
            pass
        assert s.completion is not None
        return s.completion

    def count_chat_tokens(self, messages: Sequence[Message]) -> int:
        return self._model.count_chat_tokens(self.outgoing_messages(messages))


# -- a ledger that stores text masked ------------------------------------------------------
class MaskingLedger:
    """Wraps a run ledger so prompts, messages and outputs are stored with PII masked.

    Reading, usage and purging go to the wrapped ledger unchanged.
    """

    def __init__(self, ledger: Any, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE):
        self._ledger = ledger
        self.min_confidence = min_confidence

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    def record(self, run: Any) -> int:
        masker = Masker(min_confidence=self.min_confidence)
        run = dataclasses.replace(
            run,
            prompt=None if run.prompt is None else masker.mask(run.prompt),
            messages=None if run.messages is None else [{**m, "content": masker.mask(m["content"])}
                                                        for m in run.messages],
            output=[masker.mask(o) for o in run.output],
            meta={**run.meta, "pii_masked": sorted({ph.strip("[]").rsplit("_", 1)[0].lower()
                                                    for ph in masker.mapping})},
        )
        return self._ledger.record(run)
