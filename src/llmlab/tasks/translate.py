"""Translation between Korean and English (other target languages by name).

The source language is detected from the text (share of Hangul letters) unless given.
Long texts are translated piece by piece (paragraphs, then sentences) so each piece fits
the context window, and the pieces are joined in order.
"""
from __future__ import annotations

import logging
from typing import Any

from ..eval.metrics import is_korean
from ..prompts.run import run_template
from ..prompts.template import PromptTemplate
from .chunking import split_to_fit
from .common import declared, pick_template, room_for
from .result import TaskResult

log = logging.getLogger(__name__)

LANGUAGES = {"ko": "Korean", "en": "English", "ja": "Japanese", "zh": "Chinese", "fr": "French", "de": "German",
             "es": "Spanish"}


def language_name(code_or_name: str) -> str:
    return LANGUAGES.get(code_or_name.lower(), code_or_name)


def translate(model: Any, text: str, *, to: str = "en", source: str | None = None,
              template: PromptTemplate | str | None = None, experiment: str | None = None,
              **params: Any) -> TaskResult:
    """Translate ``text`` into ``to`` (a code like "en"/"ko" or a language name)."""
    tpl = pick_template(template, "translate", ("text",))
    target = language_name(to)
    src = language_name(source) if source else ("Korean" if is_korean(text) else "English")
    if src == target:
        log.warning("the text already looks like %s; translating anyway", target)
    variables = declared(tpl, source_lang=src, target_lang=target)
    room = room_for(model, tpl, variables, "text", params)
    pieces = split_to_fit(text, room, model.count_tokens) if model.count_tokens(text) > room else [text]
    outs, calls = [], []
    for piece in pieces:
        call = dict(params)
        if "\n" not in piece.strip() and "stop" not in call and "stop" not in tpl.params:
            call["stop"] = ["\n"]  # a one-line source gets a one-line translation (small models ramble on)
        r = run_template(model, tpl, {**variables, "text": piece}, experiment=experiment, **call)
        calls.append(r.completion)
        outs.append(clean_translation(r.text, target))
    return TaskResult("translate", model.name, "\n\n".join(outs),
                      info={"source_lang": src, "target_lang": target, "chunks": len(pieces)}, completions=calls)


def clean_translation(text: str, target: str) -> str:
    """Drop a repeated "English:" label and surrounding quotes small models like to add."""
    out = text.strip()
    for prefix in (f"{target}:", f"{target} translation:", "Translation:"):
        if out.lower().startswith(prefix.lower()):
            out = out[len(prefix):].strip()
    if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'“”":
        out = out[1:-1].strip()
    return out
