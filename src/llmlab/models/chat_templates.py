"""Rendering chat messages into a prompt with the model's own chat template.

GGUF files and Hugging Face tokenizers carry a Jinja2 chat template. llmlab renders it
the way transformers does (sandboxed Jinja2, ``trim_blocks``/``lstrip_blocks``,
``raise_exception``). A model without a template gets a *named* fallback, and the name is
reported with every result — never a silent guess.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from ..errors import InvalidParameterError
from ..types import Message

#: Fallback templates a model without its own can use; the name is reported to the user.
FALLBACKS: dict[str, str] = {
    "chatml": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
    "plain": (
        "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
        "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n' }}"
        "{% else %}{{ 'Assistant: ' + message['content'] + '\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
    ),
}
DEFAULT_FALLBACK = "plain"


@lru_cache(maxsize=16)
def _compile(source: str):
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    env.filters.setdefault("tojson", lambda x, **kw: __import__("json").dumps(x, ensure_ascii=False, **kw))
    return env.from_string(source)


def render(
    source: str,
    messages: Sequence[Message],
    *,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """Render ``messages`` with the Jinja2 chat template ``source``."""
    from jinja2.exceptions import TemplateError

    try:
        return _compile(source).render(
            messages=[m.to_dict() for m in messages],
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token,
            eos_token=eos_token,
        )
    except TemplateError as e:
        raise InvalidParameterError(f"the chat template refused these messages: {e}") from None


def resolve(model_template: str | None, fallback: str | None = None) -> tuple[str, str]:
    """(template source, name to report): the model's own, else the named fallback."""
    if model_template:
        return model_template, "model"
    name = fallback or DEFAULT_FALLBACK
    if name not in FALLBACKS:
        raise InvalidParameterError(f"unknown chat template {name!r}; valid: {', '.join(sorted(FALLBACKS))}")
    return FALLBACKS[name], f"fallback:{name}"
