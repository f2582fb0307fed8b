"""What an OpenAI-compatible server accepts beyond the OpenAI API itself.

The ``openai`` backend speaks the OpenAI chat/completions API to any server. Servers built
for local models accept more sampling parameters in the same request body — under their own
field names — and OpenAI itself refuses them. A :class:`RemoteProfile` declares, per kind of
server, which of llmlab's non-OpenAI parameters it takes and the body field each goes in; a
parameter the profile lacks is refused with a clear error, never silently dropped.

Choose one with ``LLMLAB_API_PROFILE`` (or ``api_profile`` in config.toml), ``profile = …``
on a configured API model, or the backend option ``profile=``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..registry import Registry


@dataclass(frozen=True)
class RemoteProfile:
    """One kind of OpenAI-compatible server."""

    name: str
    description: str
    #: llmlab parameter name -> the request-body field this server reads it from
    fields: Mapping[str, str] = field(default_factory=dict)

    def accepts(self, param: str) -> bool:
        return param in self.fields


PROFILES: Registry[RemoteProfile] = Registry("remote API profile")
for _profile in (
    RemoteProfile("openai", "OpenAI's own API (and any server that takes only its parameters)"),
    RemoteProfile("vllm", "vLLM's OpenAI-compatible server",
                  {"top_k": "top_k", "repetition_penalty": "repetition_penalty", "min_new_tokens": "min_tokens"}),
    RemoteProfile("llamacpp", "llama.cpp's llama-server",
                  {"top_k": "top_k", "repetition_penalty": "repeat_penalty"}),
    RemoteProfile("ollama", "Ollama's OpenAI-compatible endpoint (/v1); top_k only through its native API"),
):
    PROFILES.register(_profile.name, _profile)


def get_profile(name: str | None) -> RemoteProfile:
    """The profile called ``name`` (``openai`` when None); an unknown name lists the valid ones."""
    return PROFILES.get(name or "openai")
