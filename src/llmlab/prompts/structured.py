"""Structured output: find the JSON in a model's reply and validate it against a schema.

Whether decoding was constrained (llama.cpp with a grammar) or not (other backends), the
reply is always parsed and validated here, and every failure is reported — never a
silently wrong object.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


@dataclass
class StructuredOutput:
    """The outcome of parsing and validating one reply."""

    data: Any = None
    valid: bool = False
    errors: list[str] = field(default_factory=list)
    constrained: bool = False  # decoding was restricted to the schema by a grammar

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "valid": self.valid, "errors": self.errors, "constrained": self.constrained}


def extract_json(text: str) -> tuple[Any, str | None]:
    """The first JSON value in ``text`` (code fences and chatter around it allowed).

    Returns ``(value, None)`` or ``(None, problem)``.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    problem = "no JSON object or array in the reply"
    for cand in candidates:
        for m in re.finditer(r"[\[{\"]", cand):
            try:
                value, _ = decoder.raw_decode(cand, m.start())
            except json.JSONDecodeError as e:
                problem = f"invalid JSON: {e.msg} at character {e.pos}"
                continue
            if isinstance(value, (dict, list)) or m.start() == 0:
                return value, None
    stripped = text.strip()
    try:  # a bare scalar reply ("42", "true", '"label"')
        return json.loads(stripped), None
    except (json.JSONDecodeError, ValueError):
        return None, problem


def validation_errors(data: Any, schema: dict[str, Any]) -> list[str]:
    """Every way ``data`` breaks ``schema``, as "at PATH: problem" lines (empty when valid)."""
    from jsonschema import Draft202012Validator

    out = []
    for err in sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.absolute_path)):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        out.append(f"at {path}: {err.message}")
    return out


def parse_structured(text: str, schema: dict[str, Any], *, constrained: bool = False) -> StructuredOutput:
    """Parse ``text`` as JSON and validate it against ``schema``."""
    value, problem = extract_json(text)
    if problem is not None:
        return StructuredOutput(None, False, [problem], constrained)
    errors = validation_errors(value, schema)
    return StructuredOutput(value, not errors, errors, constrained)


def supports_constraints(model: Any) -> bool:
    """Whether ``model``'s backend enforces ``json_schema`` while decoding (it declares
    ``capabilities.json_schema``: llama.cpp's grammar sampler); others are validated afterwards."""
    return model.backend.capabilities.json_schema
