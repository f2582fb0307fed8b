"""``llmlab eval``: score a model or template on a dataset; compare two recorded runs."""
from __future__ import annotations

import sys
from typing import Any

import click

from . import common
from .common import emit_json, generation_options, handle_errors, json_option, model_options, split_options


@click.group("eval")
def eval_group() -> None:
    """Evaluate on a dataset (translate, summarize, qa, classify, perplexity) or compare runs.

    \b
    llmlab eval translate --data ko_en_mt/dev.jsonl --limit 20 --json
    llmlab eval compare 12 15
    """


def _evaluate(task: str, data: str, model, backend, kwargs: dict[str, Any], as_json: bool, show_items: bool,
              **options: Any) -> None:
    from ..eval.runners import evaluate
    from ..ledger import recorder

    settings = common.get_settings()
    gen, load = split_options(kwargs)
    template = options.pop("template", None)
    if template is not None:
        from ..prompts.library import load_template

        options["template"] = load_template(template)
    ledger = recorder(settings)
    m = common.open_model(model, backend, load)
    bar = _bar(task)
    try:
        def progress(i: int, n: int) -> None:
            bar.total = n
            bar.n = i
            bar.refresh()

        res = evaluate(task, m, data, progress=progress, ledger=ledger, **options, **gen)
    finally:
        bar.close()
        m.close()
    if as_json:
        emit_json(res.to_dict(items=show_items))
        return
    click.echo(f"{res.task} · {res.model} · n={res.n}" + (f" · run {res.run_id}" if res.run_id else ""))
    for k, v in res.metrics.items():
        click.echo(f"  {k:<16} {v}")
    if show_items:
        for it in res.items:
            click.echo(f"\n[{it.id}] {it.source or ''}\n  pred: {it.prediction}\n  ref:  {it.reference}\n  {it.scores}")


def _bar(task: str):
    from tqdm import tqdm

    return tqdm(desc=f"eval {task}", unit="item", file=sys.stderr, leave=False, dynamic_ncols=True)


common_options = [
    click.option("--data", required=True, help="Dataset file (JSONL; a text file for perplexity)."),
    click.option("--limit", type=int, default=None, help="Use the first N items (tokens, for perplexity)."),
    click.option("--items", "show_items", is_flag=True, help="Show per-item predictions (always in the ledger)."),
]


def eval_options(with_template: bool = True):
    def deco(f):
        opts = list(common_options)
        if with_template:
            opts.append(click.option("--template", default=None,
                                     help="Template (library name or YAML) to evaluate instead of the default."))
        for o in reversed(opts):
            f = o(f)
        return model_options(json_option(f))
    return deco


@eval_group.command()
@eval_options()
@click.option("--direction", type=click.Choice(["ko-en", "en-ko"]), default="ko-en", show_default=True)
@generation_options
@handle_errors
def translate(data, limit, show_items, template, direction, model, backend, as_json, **kwargs):
    """chrF and BLEU on {id, ko, en} pairs."""
    _evaluate("translate", data, model, backend, kwargs, as_json, show_items, limit=limit, template=template,
              direction=direction)


@eval_group.command()
@eval_options()
@click.option("--style", type=click.Choice(["sentence", "bullet"]), default="sentence", show_default=True)
@generation_options
@handle_errors
def summarize(data, limit, show_items, template, style, model, backend, as_json, **kwargs):
    """ROUGE-1/2/L over Kiwi morphemes on {id, document, summary}."""
    _evaluate("summarize", data, model, backend, kwargs, as_json, show_items, limit=limit, template=template,
              style=style)


@eval_group.command()
@eval_options()
@click.option("--contexts", required=True, help="Corpus JSONL {id, text} to look up each question's context_id.")
@generation_options
@handle_errors
def qa(data, limit, show_items, template, contexts, model, backend, as_json, **kwargs):
    """KorQuAD-style exact match and F1 on {id, question, answers, context_id}."""
    _evaluate("qa", data, model, backend, kwargs, as_json, show_items, limit=limit, template=template,
              contexts=contexts)


@eval_group.command()
@eval_options()
@click.option("--labels", default=None, help="Comma-separated labels (default: those in the data).")
@generation_options
@handle_errors
def classify(data, limit, show_items, template, labels, model, backend, as_json, **kwargs):
    """Accuracy and macro-F1 on {id, text, label}."""
    _evaluate("classify", data, model, backend, kwargs, as_json, show_items, limit=limit, template=template,
              labels=labels)


@eval_group.command()
@eval_options(with_template=False)
@handle_errors
def perplexity(data, limit, show_items, model, backend, as_json, **kwargs):
    """Perplexity of the model on a text file (or the text fields of a JSONL file)."""
    _evaluate("perplexity", data, model, backend, kwargs, as_json, show_items, limit=limit)


@eval_group.command()
@click.argument("run_a", type=int)
@click.argument("run_b", type=int)
@click.option("--limit", type=int, default=10, show_default=True, help="Items to show side by side (0: none).")
@json_option
@handle_errors
def compare(run_a: int, run_b: int, limit: int, as_json: bool) -> None:
    """Metric deltas (B − A) and per-item outputs of two recorded evaluations."""
    from ..eval.compare import compare_runs
    from ..ledger import open_ledger

    cmp = compare_runs(open_ledger(common.get_settings()), run_a, run_b)
    if as_json:
        emit_json(cmp.to_dict())
        return
    a, b = cmp.a, cmp.b
    click.echo(f"{a['task']}: A = run {a['run_id']} ({a['model']}, {a['template']}), "
               f"B = run {b['run_id']} ({b['model']}, {b['template']})")
    click.echo(f"  {'metric':<16} {'A':>10} {'B':>10} {'B − A':>10}")
    for k, d in cmp.deltas.items():
        click.echo(f"  {k:<16} {a['metrics'][k]:>10} {b['metrics'][k]:>10} {d:>+10.4f}")
    for it in cmp.items[:limit]:
        click.echo(f"\n[{it['id']}] {it['source'] or ''}\n  ref: {it['reference']}\n  A:   {it['a']}  {it['a_scores']}"
                   f"\n  B:   {it['b']}  {it['b_scores']}")
