"""Question answering from a given context only, saying so when the answer is not there.

The model is told to copy the answer from the context or reply with a fixed phrase; the
result marks ``found: false`` when it did. A context longer than the window is cut into
pieces and the pieces sharing the most character bigrams with the question are kept
(reported as ``context_pieces``).
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from ..errors import InvalidParameterError
from ..prompts.run import run_template
from ..prompts.template import PromptTemplate
from .chunking import split_to_fit
from .common import declared, pick_template, room_for
from .result import TaskResult

NOT_FOUND = "not in the context"
# phrases that mean "not in the context" (English and Korean)
_NOT_FOUND_MARKERS = ("not in the context", "not in context", "문맥에 없", "본문에 없", "context does not")


def _bigrams(text: str) -> Counter:
    s = "".join(text.split())
    return Counter(s[i : i + 2] for i in range(len(s) - 1))


def select_context(context: str, question: str, room: int, count) -> tuple[str, int, int]:
    """The context, or its pieces most similar to the question that fit ``room`` tokens
    (kept in document order): (text, pieces kept, pieces total)."""
    if count(context) <= room:
        return context, 1, 1
    pieces = split_to_fit(context, max(32, room // 4), count)
    q = _bigrams(question)
    ranked = sorted(range(len(pieces)), key=lambda i: -sum((_bigrams(pieces[i]) & q).values()))
    keep, used = [], 0
    for i in ranked:
        n = count(pieces[i]) + 2
        if used + n <= room:
            keep.append(i)
            used += n
    return "\n\n".join(pieces[i] for i in sorted(keep)), len(keep), len(pieces)


def is_not_found(answer: str, phrase: str = NOT_FOUND) -> bool:
    a = answer.strip().lower()
    return not a or phrase.lower() in a or any(m in a for m in _NOT_FOUND_MARKERS)


def answer_question(model: Any, context: str, question: str, *, template: PromptTemplate | str | None = None,
                    experiment: str | None = None, **params: Any) -> TaskResult:
    """Answer ``question`` from ``context`` only."""
    if not question.strip():
        raise InvalidParameterError("the question is empty")
    if not context.strip():
        raise InvalidParameterError("the context is empty")
    tpl = pick_template(template, "extractive_qa", ("context", "question"))
    variables = declared(tpl, question=question)
    room = room_for(model, tpl, variables, "context", params)
    ctx, kept, total = select_context(context, question, room, model.count_tokens)
    r = run_template(model, tpl, {**variables, "context": ctx}, experiment=experiment, **params)
    raw = r.text.strip()
    phrase = str(tpl.variables["not_found"].default) if "not_found" in tpl.variables else NOT_FOUND
    found = not is_not_found(raw, phrase)
    answer = raw.splitlines()[0].strip() if found else None
    return TaskResult("qa", model.name, answer if found else phrase, data={"answer": answer, "found": found},
                      info={"found": found, "context_pieces": {"kept": kept, "total": total}, "raw": raw},
                      completions=[r.completion])
