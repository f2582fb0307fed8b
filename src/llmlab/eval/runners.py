"""Evaluation runners: score a model (or a template) on a dataset and record the run.

Each runner reads its data format (checked line by line), produces predictions with the
matching task preset, computes the metrics and records one ``kind="eval"`` run in the
ledger — predictions, references and per-item scores in ``meta`` — so that
``llmlab eval compare`` can put two runs side by side later. The generations themselves
are recorded too, under the evaluation's experiment id.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import InputFileError, InvalidParameterError, LLMLabError
from ..registry import Registry
from . import metrics as M
from .data import FORMATS, read_jsonl, read_text

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
RUNNERS: Registry = Registry("evaluation task")


@dataclass
class EvalItem:
    id: str
    prediction: str
    reference: Any
    scores: dict[str, float] = field(default_factory=dict)
    source: str | None = None  # the input shown to the model (shortened)

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "prediction": self.prediction, "reference": self.reference, "scores": self.scores}
        if self.source is not None:
            d["source"] = self.source
        return d


@dataclass
class EvalResult:
    """``to_dict`` gives the evaluation JSON: {"task", "model", "n", "metrics", …}."""

    task: str
    model: str
    n: int
    metrics: dict[str, Any]
    items: list[EvalItem] = field(default_factory=list)
    data: str | None = None
    template: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    experiment: str | None = None
    run_id: int | None = None
    latency_s: float = 0.0
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0,
                                                            "total_tokens": 0})

    def to_dict(self, items: bool = True) -> dict[str, Any]:
        d = {"task": self.task, "model": self.model, "n": self.n, "metrics": self.metrics, "data": self.data,
             "template": self.template, "params": self.params, "experiment": self.experiment, "run_id": self.run_id,
             "latency_s": round(self.latency_s, 3), "usage": self.usage}
        if items:
            d["items"] = [i.to_dict() for i in self.items]
        return d


class _Calls:
    """Accumulates usage and latency over the task results of one evaluation."""

    def __init__(self):
        self.prompt = self.completion = 0
        self.latency = 0.0

    def add(self, result: Any) -> None:
        u = result.usage
        self.prompt += u["prompt_tokens"]
        self.completion += u["completion_tokens"]
        self.latency += result.latency_s

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt, "completion_tokens": self.completion,
                "total_tokens": self.prompt + self.completion}


def _short(s: str, n: int = 200) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def new_experiment(task: str) -> str:
    return f"eval-{task}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"


def record(ledger: Any, model: Any, result: EvalResult) -> EvalResult:
    """Append the evaluation to ``ledger`` (if any) and set ``result.run_id``."""
    if ledger is None:
        return result
    try:
        result.run_id = _record(ledger, model, result)
    except LLMLabError as e:  # a full disk must not lose a finished evaluation's scores
        log.warning("the evaluation's results are returned but were not recorded: %s", e)
    return result


def _record(ledger: Any, model: Any, result: EvalResult) -> int:
    from ..ledger import RunRecord

    return ledger.record(RunRecord(
        kind="eval", model=result.model, backend=model.backend.name, params=result.params,
        output=[i.prediction for i in result.items], prompt_tokens=result.usage["prompt_tokens"],
        completion_tokens=result.usage["completion_tokens"], latency_s=round(result.latency_s, 4),
        experiment=result.experiment,
        meta={"task": result.task, "n": result.n, "metrics": result.metrics, "data": result.data,
              "template": result.template, "items": [i.to_dict() for i in result.items]},
    ))


def _tick(progress: Progress | None, i: int, n: int) -> None:
    if progress is not None:
        progress(i, n)


# -- translation ------------------------------------------------------------------------------
@RUNNERS.register("translate")
def evaluate_translation(model: Any, data: str | Path, *, direction: str = "ko-en", limit: int | None = None,
                         template: Any = None, progress: Progress | None = None, ledger: Any = None,
                         **params: Any) -> EvalResult:
    """chrF and BLEU on ko_en_mt-style data ({id, ko, en}); ``direction`` ko-en or en-ko."""
    from ..tasks.translate import translate

    if direction not in ("ko-en", "en-ko"):
        raise InvalidParameterError(f"unknown direction {direction!r}; valid: ko-en, en-ko")
    src, tgt = direction.split("-")
    recs = read_jsonl(data, FORMATS["translate"], limit)
    exp, calls, items = new_experiment("translate"), _Calls(), []
    for i, r in enumerate(recs, 1):
        res = translate(model, r[src], to=tgt, source=src, template=template, experiment=exp, **params)
        calls.add(res)
        items.append(EvalItem(str(r["id"]), res.text, r[tgt], {"chrf": M.sentence_chrf(res.text, r[tgt])},
                              _short(r[src])))
        _tick(progress, i, len(recs))
    preds, refs = [i.prediction for i in items], [i.reference for i in items]
    tok = M.bleu_tokenizer(refs)
    metrics = {"chrf": M.chrf(preds, refs), "bleu": M.bleu(preds, refs, tok), "bleu_tokenize": tok,
               "direction": direction}
    return record(ledger, model, EvalResult("translate", model.name, len(items), metrics, items, str(data),
                                            _tname(template, "translate"), params, exp, None, calls.latency,
                                            calls.usage()))


# -- summarization ----------------------------------------------------------------------------
@RUNNERS.register("summarize")
def evaluate_summarization(model: Any, data: str | Path, *, limit: int | None = None, template: Any = None,
                           style: str = "sentence", progress: Progress | None = None, ledger: Any = None,
                           **params: Any) -> EvalResult:
    """ROUGE-1/2/L over Kiwi morphemes on ko_summ-style data ({id, document, summary})."""
    from ..tasks.summarize import summarize

    recs = read_jsonl(data, FORMATS["summarize"], limit)
    exp, calls, items = new_experiment("summarize"), _Calls(), []
    for i, r in enumerate(recs, 1):
        res = summarize(model, r["document"], style=style, template=template, experiment=exp, **params)
        calls.add(res)
        items.append(EvalItem(str(r["id"]), res.text, r["summary"], M.rouge_item(res.text, r["summary"]),
                              _short(r["document"])))
        _tick(progress, i, len(recs))
    metrics = {**M.rouge([i.prediction for i in items], [i.reference for i in items]), "tokenizer": "kiwi-morphemes"}
    return record(ledger, model, EvalResult("summarize", model.name, len(items), metrics, items, str(data),
                                            _tname(template, "summarize"), params, exp, None, calls.latency,
                                            calls.usage()))


# -- extractive QA ----------------------------------------------------------------------------
def read_contexts(path: str | Path) -> dict[str, str]:
    return {str(r["id"]): r["text"] for r in read_jsonl(path, FORMATS["contexts"])}


@RUNNERS.register("qa")
def evaluate_qa(model: Any, data: str | Path, *, contexts: str | Path | None = None, limit: int | None = None,
                template: Any = None, progress: Progress | None = None, ledger: Any = None,
                **params: Any) -> EvalResult:
    """KorQuAD-style exact match and F1 on ko_rag questions, contexts looked up by ``context_id``."""
    from ..tasks.qa import answer_question

    if contexts is None:
        raise InvalidParameterError("QA evaluation needs --contexts corpus.jsonl to look up each context_id")
    ctx = read_contexts(contexts)
    recs = read_jsonl(data, FORMATS["qa"], limit)
    for n, r in enumerate(recs, 1):  # check every reference before spending time on the model
        if str(r["context_id"]) not in ctx:
            raise InputFileError(data, f"context {r['context_id']!r} is not in {contexts}", line=n, field="context_id")
    exp, calls, items = new_experiment("qa"), _Calls(), []
    not_found = 0
    for i, r in enumerate(recs, 1):
        res = answer_question(model, ctx[str(r["context_id"])], r["question"], template=template, experiment=exp,
                              **params)
        calls.add(res)
        pred = res.data["answer"] or ""
        not_found += not res.data["found"]
        items.append(EvalItem(str(r["id"]), pred, r["answers"],
                              {"exact_match": 100 * M.exact_match(pred, r["answers"]),
                               "f1": round(100 * M.qa_f1(pred, r["answers"]), 4)}, _short(r["question"])))
        _tick(progress, i, len(recs))
    metrics = {**M.squad_scores([i.prediction for i in items], [i.reference for i in items]),
               "not_found_rate": round(100 * not_found / len(items), 4)}
    return record(ledger, model, EvalResult("qa", model.name, len(items), metrics, items, str(data),
                                            _tname(template, "extractive_qa"), params, exp, None, calls.latency,
                                            calls.usage()))


# -- classification ---------------------------------------------------------------------------
@RUNNERS.register("classify")
def evaluate_classification(model: Any, data: str | Path, *, labels: str | Sequence[str] | None = None,
                            limit: int | None = None, template: Any = None, progress: Progress | None = None,
                            ledger: Any = None, **params: Any) -> EvalResult:
    """Accuracy and macro-F1 on {id, text, label} data; labels from ``labels`` or the data."""
    from ..tasks.classify import classify, parse_labels

    recs = read_jsonl(data, FORMATS["classify"], limit)
    label_set = parse_labels(labels) if labels else sorted({r["label"] for r in recs})
    for n, r in enumerate(recs, 1):
        if r["label"] not in label_set:
            raise InputFileError(data, f"label {r['label']!r} is not one of {label_set}", line=n, field="label")
    exp, calls, items = new_experiment("classify"), _Calls(), []
    for i, r in enumerate(recs, 1):
        res = classify(model, r["text"], label_set, template=template, experiment=exp, **params)
        calls.add(res)
        pred = res.data["label"]
        items.append(EvalItem(str(r["id"]), pred or "", r["label"], {"correct": float(pred == r["label"])},
                              _short(r["text"])))
        _tick(progress, i, len(recs))
    preds = [i.prediction or None for i in items]
    golds = [i.reference for i in items]
    metrics = {"accuracy": M.accuracy(preds, golds), "macro_f1": M.macro_f1(preds, golds),
               "invalid_rate": round(100 * sum(p is None for p in preds) / len(preds), 4), "labels": label_set}
    return record(ledger, model, EvalResult("classify", model.name, len(items), metrics, items, str(data),
                                            _tname(template, "classify"), params, exp, None, calls.latency,
                                            calls.usage()))


# -- perplexity -------------------------------------------------------------------------------
@RUNNERS.register("perplexity")
def evaluate_perplexity(model: Any, data: str | Path, *, limit: int | None = None, progress: Progress | None = None,
                        ledger: Any = None, **params: Any) -> EvalResult:
    """Perplexity of the model on a text file (``limit`` caps the scored tokens)."""
    from .perplexity import text_perplexity

    if params:
        raise InvalidParameterError(f"perplexity takes no generation parameters (got {', '.join(sorted(params))})")
    t0 = time.perf_counter()
    res = text_perplexity(model, read_text(data), max_tokens=limit, progress=progress)
    metrics = {"perplexity": res.perplexity, "bits_per_char": res.bits_per_char, "mean_logprob": res.mean_logprob,
               "tokens": res.tokens, "windows": res.windows}
    out = EvalResult("perplexity", model.name, res.tokens, metrics, [], str(data), None, {},
                     new_experiment("perplexity"), None, time.perf_counter() - t0,
                     {"prompt_tokens": res.tokens + 1, "completion_tokens": 0, "total_tokens": res.tokens + 1})
    return record(ledger, model, out)


def _tname(template: Any, default: str) -> str:
    if template is None:
        return default
    return getattr(template, "name", None) or str(template)


def evaluate(task: str, model: Any, data: str | Path, **options: Any) -> EvalResult:
    """Run the evaluation registered as ``task`` (translate, summarize, qa, classify, perplexity)."""
    return RUNNERS.get(task)(model, data, **options)
