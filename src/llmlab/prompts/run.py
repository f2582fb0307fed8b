"""Running one template on one model: render, generate, and (with a schema) validate.

This is what ``llmlab prompt run`` and the grid runner call; tasks build on it too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..types import Completion, Message
from .structured import StructuredOutput, parse_structured, supports_constraints
from .template import PromptTemplate


@dataclass
class PromptResult:
    """One template run: the messages sent, the completion and the parsed output."""

    template: PromptTemplate
    variables: dict[str, Any]
    messages: list[Message]
    completion: Completion
    structured: StructuredOutput | None = None

    @property
    def text(self) -> str:
        return self.completion.text

    def to_dict(self) -> dict[str, Any]:
        d = self.completion.to_dict()
        d["template"] = {"name": self.template.name, "version": self.template.version,
                         "fingerprint": self.template.fingerprint}
        d["variables"] = self.variables
        d["messages"] = [m.to_dict() for m in self.messages]
        if self.structured is not None:
            d["structured"] = self.structured.to_dict()
        return d


def constrained_params(model: Any, template: PromptTemplate, params: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``params`` plus the template's JSON schema, and whether the backend will enforce it
    while decoding (llama.cpp) — other backends get the reply validated afterwards."""
    if template.schema is None:
        return params, False
    return {**params, "json_schema": template.schema}, supports_constraints(model)


def run_template(model: Any, template: PromptTemplate, variables: dict[str, Any] | None = None, *,
                 experiment: str | None = None, **params: Any) -> PromptResult:
    """Render ``template`` with ``variables`` and run it on ``model`` as a chat.

    ``params`` override the template's default generation parameters. When the template
    declares an output schema the reply is validated (and constrained on llama.cpp).
    """
    variables = dict(variables or {})
    messages = template.messages(variables)
    merged, constrained = constrained_params(model, template, template.generation_params(**params))
    completion = model.chat(messages, experiment=experiment, **merged)
    structured = None
    if template.schema is not None:
        structured = parse_structured(completion.text, template.schema, constrained=constrained)
    return PromptResult(template, variables, messages, completion, structured)
