"""The dataset linter behind ``llmlab data check`` (and run before every training).

Errors (the file cannot be trained on): invalid JSON, wrong encoding, missing or empty
fields, unknown roles, conversations that do not end with the assistant. Warnings: exact
and near duplicates, examples longer than ``max_seq_len`` in the base model's tokens,
train/eval overlap, personal data. The report also shows one example rendered with the
base model's chat template and which of its tokens are trained on.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..guard.pii import find_pii
from . import data as data_mod
from .data import Dataset, Example
from .dedup import normalize, similar_pairs
from .formatting import Encoded, Formatter, load_tokenizer

log = logging.getLogger(__name__)

NEAR_DUPLICATE = 0.85  # Jaccard similarity of character 4-grams
HISTOGRAM_EDGES = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


@dataclass
class LintWarning:
    kind: str  # duplicate | near_duplicate | too_long | leakage | pii | template | tokenizer
    detail: str
    line: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "detail": self.detail}
        if self.line is not None:
            d["line"] = self.line
        d.update(self.extra)
        return d


@dataclass
class LintReport:
    """What ``llmlab data check`` found; ``to_dict`` is its ``--json`` output."""

    path: str
    format: str
    n: int
    errors: list[data_mod.DataError]
    warnings: list[LintWarning]
    stats: dict[str, Any]
    base: str | None = None
    max_seq_len: int | None = None
    histogram: list[dict[str, Any]] = field(default_factory=list)
    example: dict[str, Any] | None = None
    eval_path: str | None = None
    # kept for the trainer, not printed
    dataset: Dataset | None = None
    encoded: list[Encoded] | None = None
    eval_dataset: Dataset | None = None
    eval_encoded: list[Encoded] | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "file": self.path, "format": self.format, "n": self.n,
            "errors": [e.to_dict() for e in self.errors],
            "warnings": [w.to_dict() for w in self.warnings],
            "stats": self.stats, "histogram": self.histogram, "base": self.base, "max_seq_len": self.max_seq_len,
            "eval": self.eval_path, "example": self.example,
        }


def _quantile(sorted_vals: list[int], q: float) -> int:
    if not sorted_vals:
        return 0
    return sorted_vals[min(len(sorted_vals) - 1, int(round(q * (len(sorted_vals) - 1))))]


def token_stats(lengths: list[int]) -> dict[str, int] | None:
    if not lengths:
        return None
    s = sorted(lengths)
    return {"min": s[0], "p50": _quantile(s, 0.5), "p95": _quantile(s, 0.95), "max": s[-1]}


def histogram(lengths: list[int]) -> list[dict[str, Any]]:
    """Counts per power-of-two length bucket, up to the longest example."""
    if not lengths:
        return []
    top = max(lengths)
    edges = [e for e in HISTOGRAM_EDGES if e < top] + [next((e for e in HISTOGRAM_EDGES if e >= top), top)]
    out, lo = [], 0
    for e in edges:
        out.append({"from": lo + 1, "to": e, "count": sum(1 for n in lengths if lo < n <= e)})
        lo = e
    return out


def duplicate_warnings(examples: list[Example]) -> list[LintWarning]:
    out: list[LintWarning] = []
    first: dict[str, int] = {}
    exact: set[int] = set()
    for i, ex in enumerate(examples):
        key = ex.full_text()
        if key in first:
            out.append(LintWarning("duplicate", f"same example as line {examples[first[key]].line}", ex.line,
                                   {"of": examples[first[key]].line}))
            exact.add(i)
        else:
            first[key] = i
    for i, j, sim in similar_pairs([ex.full_text() for ex in examples], NEAR_DUPLICATE):
        if i in exact or j in exact:
            continue
        out.append(LintWarning("near_duplicate", f"{sim:.0%} like line {examples[i].line}", examples[j].line,
                               {"of": examples[i].line, "similarity": sim}))
    return out


def leakage_warnings(train: list[Example], evals: list[Example], eval_path: str) -> list[LintWarning]:
    """Eval examples whose prompt appears in the training data (the eval score would flatter the model)."""
    out: list[LintWarning] = []
    prompts = {normalize(ex.prompt_text()): ex.line for ex in train}
    flagged = set()
    for j, ex in enumerate(evals):
        hit = prompts.get(normalize(ex.prompt_text()))
        if hit is not None:
            flagged.add(j)
            out.append(LintWarning("leakage", f"{eval_path} line {ex.line} asks the same as training line {hit}",
                                   hit, {"eval_line": ex.line}))
    n = len(train)
    for i, j, sim in similar_pairs([ex.full_text() for ex in train] + [ex.full_text() for ex in evals], NEAR_DUPLICATE):
        if i < n <= j and (j - n) not in flagged:
            flagged.add(j - n)
            ev = evals[j - n]
            out.append(LintWarning("leakage", f"{eval_path} line {ev.line} is {sim:.0%} like training line "
                                              f"{train[i].line}", train[i].line,
                                   {"eval_line": ev.line, "similarity": sim}))
    return out


def pii_warnings(examples: list[Example], file: str | None = None) -> list[LintWarning]:
    """One warning per example that holds personal data, with the types found (never the values)."""
    out = []
    for ex in examples:
        types: list[str] = []
        for text in ex.contents():
            for m in find_pii(text):
                if m.type not in types:
                    types.append(m.type)
        if types:
            where = f"{file} line {ex.line}: " if file else ""
            out.append(LintWarning("pii", f"{where}personal data: {', '.join(types)}", ex.line,
                                   {"types": types, **({"file": file} if file else {})}))
    return out


def length_warnings(examples: list[Example], encoded: list[Encoded], max_seq_len: int) -> list[LintWarning]:
    out = []
    for ex, enc in zip(examples, encoded):
        if len(enc) <= max_seq_len:
            continue
        first = enc.first_trained()
        what = ("dropped: no trained token is left after truncation" if first is None or first >= max_seq_len
                else f"truncated to its first {max_seq_len} tokens")
        out.append(LintWarning("too_long", f"{len(enc)} tokens > max_seq_len {max_seq_len}: {what}", ex.line,
                               {"tokens": len(enc)}))
    return out


def encode_all(formatter: Formatter, ds: Dataset, errors: list[data_mod.DataError], label: str | None = None):
    """Encode every example; one the chat template refuses becomes an error and leaves the dataset."""
    from ..errors import InvalidParameterError

    kept, encoded = [], []
    for ex in ds.examples:
        try:
            encoded.append(formatter.encode(ex))
            kept.append(ex)
        except InvalidParameterError as e:
            errors.append(data_mod.DataError(ex.line, (f"{label}: " if label else "") + str(e)))
    ds.examples = kept
    return encoded


def render_example(formatter: Formatter, ex: Example, enc: Encoded) -> dict[str, Any]:
    return {"line": ex.line, "template": formatter.template_name, "tokens": len(enc), "trained_tokens": enc.trained,
            "text": enc.text, "segments": enc.segments(), "note": enc.note}


def lint(path: str, *, format: str | None = None, base: str | None = None, max_seq_len: int | None = None,
         eval_path: str | None = None, formatter: Formatter | None = None, settings=None) -> LintReport:
    """Check a fine-tuning dataset (and optionally its eval file) against base model ``base``.

    ``formatter`` (a :class:`Formatter` around an already loaded tokenizer) saves loading the
    tokenizer again; without it the tokenizer of ``base`` (default: the default model) is loaded.
    """
    from ..config import load_settings

    settings = settings or load_settings()
    ds = data_mod.load(path, format)
    ev = data_mod.load(eval_path, format or (ds.format if ds.format != "unknown" else None)) if eval_path else None
    errors = list(ds.errors)
    if ev is not None:  # eval-file problems are reported with the eval file's name
        errors += [data_mod.DataError(e.line, f"{eval_path}: {e.problem}") for e in ev.errors]
    warnings: list[LintWarning] = []
    base = base or settings.default_model
    if formatter is None:
        formatter = Formatter(load_tokenizer(base, settings))
    encoded = encode_all(formatter, ds, errors)
    ev_encoded = encode_all(formatter, ev, errors, label=str(eval_path)) if ev is not None else None
    notes = {e.note for e in encoded if e.note}
    for note in sorted(notes):
        warnings.append(LintWarning("template", note))
    if formatter.template_name.startswith("fallback:") and any(ex.is_chat for ex in ds.examples):
        warnings.append(LintWarning("template", f"{base} has no chat template; using the {formatter.template_name} "
                                                "template for training — chat with the same template afterwards"))
    dups = duplicate_warnings(ds.examples)
    too_long = length_warnings(ds.examples, encoded, max_seq_len) if max_seq_len else []
    leaks = leakage_warnings(ds.examples, ev.examples, str(eval_path)) if ev is not None else []
    pii = pii_warnings(ds.examples) + (pii_warnings(ev.examples, str(eval_path)) if ev is not None else [])
    warnings += dups + too_long + leaks + pii
    lengths = [len(e) for e in encoded]
    example = None
    if ds.examples:
        i = next((k for k, ex in enumerate(ds.examples) if ex.is_chat), 0)
        example = render_example(formatter, ds.examples[i], encoded[i])
    stats = {"tokens": token_stats(lengths), "duplicates": len(dups), "too_long": len(too_long), "pii": len(pii),
             "leakage": len(leaks), "examples": len(ds.examples), "trained_tokens": sum(e.trained for e in encoded)}
    return LintReport(path=str(path), format=ds.format, n=ds.n_records, errors=errors, warnings=warnings, stats=stats,
                      base=base, max_seq_len=max_seq_len, histogram=histogram(lengths), example=example,
                      eval_path=None if eval_path is None else str(eval_path), dataset=ds, encoded=encoded,
                      eval_dataset=ev, eval_encoded=ev_encoded)
