"""Classification into a fixed label set.

On a backend that can constrain decoding (llama.cpp), the reply is restricted to the
labels (a JSON enum); elsewhere the label is found in the free-text reply. A reply that
names no label gives ``label: null`` and ``valid: false`` rather than a guess.
"""
from __future__ import annotations

import json
import re
from typing import Any, Sequence

from ..errors import InvalidParameterError
from ..prompts.run import run_template
from ..prompts.structured import supports_constraints
from ..prompts.template import PromptTemplate
from .common import declared, pick_template
from .result import TaskResult


def parse_labels(labels: str | Sequence[str]) -> list[str]:
    out = [s.strip() for s in (labels.split(",") if isinstance(labels, str) else labels)]
    out = [s for s in out if s]
    if len(out) < 2:
        raise InvalidParameterError("give at least two labels, e.g. --labels positive,negative")
    if len(set(out)) != len(out):
        raise InvalidParameterError(f"duplicate labels in {out}")
    return out


def match_label(reply: str, labels: Sequence[str]) -> str | None:
    """The label a reply names: an exact (case-insensitive) match, else the earliest mention."""
    text = reply.strip()
    try:  # a constrained reply is a JSON string
        value = json.loads(text)
        if isinstance(value, str):
            text = value
    except (json.JSONDecodeError, ValueError):
        pass
    norm = text.strip().strip(".\"'`*:").strip().lower()
    for label in labels:
        if norm == label.lower():
            return label
    best: tuple[int, str] | None = None
    for label in labels:
        m = re.search(r"(?<!\w)" + re.escape(label.lower()) + r"(?!\w)", text.lower())
        if m is None and not label.isascii():  # Korean labels may carry a particle ("긍정입니다")
            idx = text.find(label)
            pos = idx if idx >= 0 else None
        else:
            pos = m.start() if m else None
        if pos is not None and (best is None or pos < best[0]):
            best = (pos, label)
    return best[1] if best else None


def classify(model: Any, text: str, labels: str | Sequence[str], *, template: PromptTemplate | str | None = None,
             experiment: str | None = None, **params: Any) -> TaskResult:
    """Assign one of ``labels`` to ``text``."""
    labels = parse_labels(labels)
    tpl = pick_template(template, "classify", ("text",))
    variables = declared(tpl, labels=", ".join(labels))
    constrained = supports_constraints(model)
    if constrained:  # the reply can only be one of the labels (as a JSON string)
        params = {**params, "json_schema": {"enum": labels}}
    r = run_template(model, tpl, {**variables, "text": text}, experiment=experiment, **params)
    label = match_label(r.text, labels)
    return TaskResult("classify", model.name, label or "", data={"label": label, "valid": label is not None},
                      info={"labels": labels, "constrained": constrained, "raw": r.text.strip()},
                      completions=[r.completion])
