"""Summarization, map-reduce style when the document does not fit the context window.

Short documents are summarized in one call. Longer ones are split into pieces that fit
(paragraphs, then sentences), each piece is summarized (map), and the partial summaries
are summarized together (reduce, repeated while they are still too long). The result
says which strategy ran and how many calls it took.
"""
from __future__ import annotations

from typing import Any

from ..errors import ContextOverflowError, InvalidParameterError
from ..eval.metrics import is_korean
from ..prompts.run import run_template
from ..prompts.template import PromptTemplate
from .chunking import split_to_fit
from .common import declared, pick_template, room_for
from .result import TaskResult

STYLES = ("sentence", "bullet")
MAX_LEVELS = 4


def summarize(model: Any, text: str, *, style: str = "sentence", length: int | None = None,
              language: str | None = None, template: PromptTemplate | str | None = None,
              experiment: str | None = None, **params: Any) -> TaskResult:
    """Summarize ``text`` (any length) in ``style`` ("sentence" or "bullet")."""
    if style not in STYLES:
        raise InvalidParameterError(f"unknown summary style {style!r}; valid: {', '.join(STYLES)}")
    if not text.strip():
        raise InvalidParameterError("nothing to summarize: the text is empty")
    tpl = pick_template(template, "summarize", ("text",))
    language = language or ("Korean" if is_korean(text) else "English")
    final_vars = declared(tpl, style=style, length=length, language=language)
    # partial summaries are plain sentences; only the final pass uses the requested style
    map_vars = declared(tpl, style="sentence", length=length, language=language)
    calls = []

    def run(piece: str, variables: dict[str, Any]) -> str:
        r = run_template(model, tpl, {**variables, "text": piece}, experiment=experiment, **params)
        calls.append(r.completion)
        return r.text.strip()

    room = room_for(model, tpl, final_vars, "text", params)
    if model.count_tokens(text) <= room:
        out = run(text, final_vars)
        return TaskResult("summarize", model.name, out, info={"strategy": "single", "chunks": 1, "levels": 0,
                                                               "style": style, "language": language},
                          completions=calls)
    pieces = split_to_fit(text, room, model.count_tokens)
    n_chunks = len(pieces)
    level = 0
    while True:
        level += 1
        if level > MAX_LEVELS:
            raise ContextOverflowError(f"the summaries still do not fit the context after {MAX_LEVELS} "
                                       f"map-reduce levels; use a model with a larger context window")
        partials = [run(p, map_vars) for p in pieces]
        joined = "\n\n".join(p for p in partials if p)
        if model.count_tokens(joined) <= room:
            out = run(joined, final_vars)
            break
        pieces = split_to_fit(joined, room, model.count_tokens)
    return TaskResult("summarize", model.name, out,
                      info={"strategy": "map-reduce", "chunks": n_chunks, "levels": level, "style": style,
                            "language": language}, completions=calls)
