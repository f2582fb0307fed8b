"""Request-model fields generated from :class:`~llmlab.types.GenerationParams`' field metadata.

The OpenAI-compatible and the lab request models do not restate any range: each generation
control is ``param_field(name)``, whose bounds and description come from ``GenerationParams.spec``
(and so appear in ``/openapi.json``). Where OpenAI's protocol is narrower than llmlab's own rules,
the difference is declared once in :data:`OPENAI_NARROWER`, with its reason.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import Field

from ..types import GenerationParams, ParamSpec

#: OpenAI's API refuses temperature above 2; a client written against it (and its tests) expects
#: the same refusal here, so the OpenAI door is narrower than the library's 0–5.
OPENAI_NARROWER: dict[str, dict[str, Any]] = {"temperature": {"maximum": 2}}


def openai_spec(name: str) -> ParamSpec:
    """The rule of parameter ``name`` as the OpenAI-compatible door applies it."""
    return dataclasses.replace(GenerationParams.spec(name), **OPENAI_NARROWER.get(name, {}))


def param_field(name: str, *, openai: bool = False) -> Any:
    """An optional request field (default ``None`` = unset) with the parameter's bounds and help.

    A rule the JSON schema cannot say (temperature: 0 or at least 0.01) is checked by the routes
    with ``GenerationParams.check``, which gives the 400 its wording.
    """
    spec = openai_spec(name) if openai else GenerationParams.spec(name)
    bounds: dict[str, Any] = {}
    if spec.minimum is not None:
        bounds["gt" if spec.exclusive_minimum else "ge"] = spec.minimum
    if spec.maximum is not None:
        bounds["le"] = spec.maximum
    return Field(None, description=f"{spec.en} ({spec.rule()})", **bounds)
