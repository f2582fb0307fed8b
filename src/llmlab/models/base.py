"""The ``Backend`` seam: what every model runtime provides to llmlab.

A backend turns a prompt (or a list of chat messages) and :class:`GenerationParams` into
a stream of :class:`Delta` events followed by one final :class:`Completion`. Everything
else — the ledger, the CLI, the server — talks to backends only through this protocol.
Backends register by name in :data:`BACKENDS`.
"""
from __future__ import annotations

import logging
from typing import Iterator, Protocol, Sequence, runtime_checkable

from ..registry import Registry, lazy
from ..types import Completion, Delta, GenerationParams, Message, ModelInfo
from . import chat_templates

log = logging.getLogger(__name__)

Event = "Delta | Completion"


@runtime_checkable
class Backend(Protocol):
    """A loaded model on some runtime."""

    name: str  # the registry name of the runtime ("llamacpp", "transformers", "openai", "fake")
    info: ModelInfo

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]: ...

    def token_strings(self, ids: Sequence[int]) -> list[str]: ...

    def detokenize(self, ids: Sequence[int]) -> str: ...

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Delta | Completion]:
        """Plain completion: yields text deltas, then exactly one Completion."""
        ...

    def stream_chat(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[Delta | Completion]:
        """Chat: yields text deltas, then exactly one Completion."""
        ...

    def close(self) -> None: ...


class LocalBackend:
    """Shared behaviour of backends that run a model in this process.

    Chat is rendered with the model's own template (or a reported fallback) and then
    generated as a plain completion, so both paths share one decode loop.
    """

    name = "local"
    info: ModelInfo
    chat_fallback: str | None = None

    def bos_eos(self) -> tuple[str, str]:
        return "", ""

    def chat_template(self) -> tuple[str, str]:
        return chat_templates.resolve(self.info.chat_template, self.chat_fallback)

    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        source, _ = self.chat_template()
        bos, eos = self.bos_eos()
        return chat_templates.render(source, messages, add_generation_prompt=add_generation_prompt, bos_token=bos, eos_token=eos)

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Delta | Completion]:  # pragma: no cover
        raise NotImplementedError

    def stream_chat(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[Delta | Completion]:
        _, template_name = self.chat_template()
        if template_name.startswith("fallback:"):
            log.warning("%s has no chat template; using the %s template", self.info.name, template_name)
        prompt = self.render_chat(messages)
        for ev in self.stream(prompt, params, _chat=True):
            if isinstance(ev, Completion):
                ev.chat_template = template_name
            yield ev

    def count_chat_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.tokenize(self.render_chat(messages), add_special=False))

    def close(self) -> None:
        pass


BACKENDS: Registry = Registry("backend")
BACKENDS.register("llamacpp", lazy("llmlab.models.llamacpp", "LlamaCppBackend.load"))
BACKENDS.register("transformers", lazy("llmlab.models.hf", "TransformersBackend.load"))
BACKENDS.register("openai", lazy("llmlab.models.openai_compat", "OpenAICompatBackend.load"))
BACKENDS.register("fake", lazy("llmlab.testing.fakes", "FakeBackend.load"))
