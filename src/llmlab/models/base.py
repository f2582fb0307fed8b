"""The ``Backend`` seam: what every model runtime provides to llmlab.

A backend turns a prompt (or a list of chat messages) and :class:`GenerationParams` into
a stream of :class:`Delta` events followed by one final :class:`Completion`. Everything
else — the ledger, the CLI, the server — talks to backends only through this protocol.
Every backend declares what it can do in ``capabilities`` (:class:`Capabilities`); callers
read that instead of probing attributes. Backends register by name in :data:`BACKENDS`
(a :class:`BackendEntry` each: how to load it, its load options, its capabilities), and
other packages add theirs through the ``llmlab.backends`` entry-point group.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

from ..errors import RegistryError
from ..registry import Registry, lazy
from ..types import Completion, Delta, GenerationParams, Message, ModelInfo
from . import capabilities as caps
from . import chat_templates
from .capabilities import Capabilities

log = logging.getLogger(__name__)


@runtime_checkable
class Backend(Protocol):
    """A loaded model on some runtime."""

    name: str  # the registry name of the runtime ("llamacpp", "transformers", "openai", "fake")
    info: ModelInfo
    capabilities: Capabilities  # what it can do; callers read this, never probe

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]: ...

    def token_strings(self, ids: Sequence[int]) -> list[str]: ...

    def detokenize(self, ids: Sequence[int]) -> str: ...

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Delta | Completion]:
        """Plain completion: yields text deltas, then exactly one Completion."""
        ...

    def stream_chat(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[Delta | Completion]:
        """Chat: yields text deltas, then exactly one Completion."""
        ...

    def count_chat_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens a conversation takes, chat template included (exact or a safe estimate)."""
        ...

    def close(self) -> None:
        """Free the model; calling it again does nothing."""
        ...


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

    def stream_chat(self, messages: Sequence[Message], params: GenerationParams, *,
                    deltas: bool = True) -> Iterator[Delta | Completion]:
        """``deltas=False`` only for a backend that declares ``capabilities.quiet`` (see there)."""
        _, template_name = self.chat_template()
        if template_name.startswith("fallback:"):
            log.warning("%s has no chat template; using the %s template", self.info.name, template_name)
        prompt = self.render_chat(messages)
        for ev in self.stream(prompt, params, _chat=True, **({} if deltas else {"deltas": False})):
            if isinstance(ev, Completion):
                ev.chat_template = template_name
            yield ev

    def count_chat_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.tokenize(self.render_chat(messages), add_special=False))

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class BackendEntry:
    """A backend kind in :data:`BACKENDS`: how to load it, what it accepts, what it can do.

    ``capabilities`` are the kind's declared defaults (shown by ``llmlab models list``
    without loading anything); a loaded backend's own ``capabilities`` are the truth for
    that instance. Calling the entry loads a backend: ``entry(spec, settings, **options)``.
    """

    load: Callable[..., Any]
    capabilities: Capabilities = Capabilities()
    options: frozenset[str] = field(default_factory=frozenset)

    def __call__(self, spec: Any, settings: Any, **options: Any) -> Any:
        return self.load(spec, settings, **options)


def backend_entry(obj: Any) -> BackendEntry:
    """A plugin's ``llmlab.backends`` entry point as a :class:`BackendEntry`.

    The entry point names a :class:`BackendEntry`, or a backend class with a ``load``
    classmethod ``(spec, settings, **options)``, a ``capabilities`` class attribute and an
    optional ``OPTIONS`` set of load option names.
    """
    if isinstance(obj, BackendEntry):
        return obj
    if not isinstance(obj, type):
        raise RegistryError(f"a llmlab.backends entry point must name a BackendEntry or a backend class; got {obj!r}")
    load, declared, options = (getattr(obj, k, None) for k in ("load", "capabilities", "OPTIONS"))
    if not callable(load) or not isinstance(declared, Capabilities):
        raise RegistryError(f"backend class {obj.__module__}.{obj.__qualname__} needs a load classmethod and a "
                            f"capabilities attribute (a llmlab.models.capabilities.Capabilities)")
    return BackendEntry(load, declared, frozenset(options or ()))


BACKENDS: Registry[BackendEntry] = Registry("backend", group="llmlab.backends", coerce=backend_entry)
BACKENDS.register(caps.BackendKind.LLAMACPP.value, BackendEntry(
    lazy("llmlab.models.llamacpp", "LlamaCppBackend.load"), caps.LLAMACPP,
    frozenset({"n_ctx", "threads", "n_batch", "verbose", "chat_template", "max_waiting", "parallel",
               "queue_timeout_s"})), origin="llmlab")
BACKENDS.register(caps.BackendKind.TRANSFORMERS.value, BackendEntry(
    lazy("llmlab.models.hf", "TransformersBackend.load"), caps.TRANSFORMERS,
    frozenset({"device", "dtype", "load_in", "trust_remote_code", "threads", "n_ctx"})), origin="llmlab")
BACKENDS.register(caps.BackendKind.OPENAI.value, BackendEntry(
    lazy("llmlab.models.openai_compat", "OpenAICompatBackend.load"), caps.OPENAI,
    frozenset({"api_key", "base_url", "extra_params", "max_retries", "max_retry_wait", "profile", "timeout"})),
    origin="llmlab")
BACKENDS.register(caps.BackendKind.FAKE.value, BackendEntry(
    lazy("llmlab.testing.fakes", "FakeBackend.load"), caps.FAKE,
    frozenset({"replies", "context_length", "delay_s", "chat_template", "parallel", "max_waiting",
               "queue_timeout_s"})), origin="llmlab")


def backend_capabilities(name: str) -> Capabilities:
    """The declared capabilities of backend kind ``name`` (nothing is loaded)."""
    return BACKENDS.get(name).capabilities
