"""Scorers a grid can attach to its cells: each maps (output, input, template) to a number.

Register new ones with ``SCORERS.register(name, factory)``; a factory takes the scorer's
options from the grid file (e.g. ``{name: chrf, field: reference}``) and returns a
callable. Unknown names and options are errors listing what is valid.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from ..errors import InvalidParameterError
from ..registry import Registry
from .structured import parse_structured
from .template import PromptTemplate

Scorer = Callable[[str, dict[str, Any], PromptTemplate], "float | None"]
SCORERS: Registry = Registry("scorer")


def _reference(inp: dict[str, Any], field: str) -> str | None:
    v = inp.get(field)
    return None if v is None else str(v)


def _needs(field: str | None, default: str) -> str:
    return field or default


@SCORERS.register("chars")
def _chars(**opts: Any) -> Scorer:
    """Length of the output in characters."""
    _no_options("chars", opts)
    return lambda out, inp, tpl: float(len(out))


@SCORERS.register("korean_ratio")
def _korean_ratio(**opts: Any) -> Scorer:
    """Share (0–100) of letters that are Hangul — did the model answer in Korean?"""
    _no_options("korean_ratio", opts)

    def score(out, inp, tpl):
        letters = [c for c in out if c.isalpha()]
        return round(100 * sum(1 for c in letters if "\uac00" <= c <= "\ud7a3") / len(letters), 2) if letters else 0.0

    return score


@SCORERS.register("json_valid")
def _json_valid(**opts: Any) -> Scorer:
    """1 when the output parses as JSON and follows the template's schema (if it has one)."""
    _no_options("json_valid", opts)

    def score(out, inp, tpl):
        return float(parse_structured(out, tpl.schema or {}).valid)

    return score


@SCORERS.register("contains")
def _contains(field: str | None = None, **opts: Any) -> Scorer:
    """1 when the input's expected text (field ``expected``) occurs in the output (case-insensitive)."""
    _no_options("contains", opts)
    f = _needs(field, "expected")

    def score(out, inp, tpl):
        ref = _reference(inp, f)
        return None if ref is None else float(ref.lower() in out.lower())

    return score


@SCORERS.register("regex")
def _regex(pattern: str | None = None, **opts: Any) -> Scorer:
    """1 when ``pattern`` matches somewhere in the output."""
    _no_options("regex", opts)
    if not pattern:
        raise InvalidParameterError("scorer 'regex' needs a 'pattern'")
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise InvalidParameterError(f"scorer 'regex': invalid pattern {pattern!r}: {e}") from None
    return lambda out, inp, tpl: float(bool(rx.search(out)))


@SCORERS.register("exact")
def _exact(field: str | None = None, **opts: Any) -> Scorer:
    """KorQuAD-normalized exact match (0/100) against the input's ``expected`` field."""
    _no_options("exact", opts)
    f = _needs(field, "expected")

    def score(out, inp, tpl):
        from ..eval.metrics import exact_match

        ref = _reference(inp, f)
        return None if ref is None else 100 * exact_match(out, ref)

    return score


@SCORERS.register("chrf")
def _chrf(field: str | None = None, **opts: Any) -> Scorer:
    """Sentence chrF against the input's ``reference`` field."""
    _no_options("chrf", opts)
    f = _needs(field, "reference")

    def score(out, inp, tpl):
        from ..eval.metrics import sentence_chrf

        ref = _reference(inp, f)
        return None if ref is None else sentence_chrf(out, ref)

    return score


@SCORERS.register("rouge_l")
def _rouge_l(field: str | None = None, **opts: Any) -> Scorer:
    """ROUGE-L F1 over Kiwi morphemes against the input's ``reference`` field."""
    _no_options("rouge_l", opts)
    f = _needs(field, "reference")

    def score(out, inp, tpl):
        from ..eval.metrics import rouge_item

        ref = _reference(inp, f)
        return None if ref is None else rouge_item(out, ref)["rougeL"]

    return score


def _no_options(name: str, opts: dict[str, Any]) -> None:
    if opts:
        raise InvalidParameterError(f"scorer {name!r} got unknown option(s) {', '.join(sorted(opts))}")


def make_scorer(spec: str | dict[str, Any]) -> tuple[str, Scorer]:
    """(label, scorer) from a grid entry: ``"chars"`` or ``{name: chrf, field: ref}``."""
    if isinstance(spec, str):
        name, opts = spec, {}
    else:
        opts = dict(spec)
        name = opts.pop("name", None)
        if not name:
            raise InvalidParameterError(f"a scorer needs a 'name'; valid: {', '.join(SCORERS.names())}")
    label = opts.pop("label", None) or name
    return label, SCORERS.get(name)(**opts)
