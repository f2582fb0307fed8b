"""``llmlab data check``: lint a fine-tuning dataset before training on it."""
from __future__ import annotations

import sys

import click

from . import common
from .common import emit_json, handle_errors, json_option

MAX_SHOWN = 5  # warnings of each kind listed in the text output (all of them are in --json)


@click.group()
def data() -> None:
    """Datasets for fine-tuning.

    \b
    llmlab data check train.jsonl --base smollm2-135m --max-seq-len 512
    llmlab data check train.jsonl --eval eval.jsonl --json
    """


@data.command()
@click.argument("file")
@click.option("--format", "fmt", type=click.Choice(["alpaca", "messages", "text"]), default=None,
              help="Dataset format (default: detected from the first record).")
@click.option("--base", default=None, help="Base model whose tokenizer and chat template to use (default: the default model).")
@click.option("--max-seq-len", type=int, default=None, help="Warn about examples longer than this many tokens.")
@click.option("--eval", "eval_file", default=None, help="Eval file: checked too, and for overlap with FILE (leakage).")
@json_option
@handle_errors
def check(file: str, fmt: str | None, base: str | None, max_seq_len: int | None, eval_file: str | None,
          as_json: bool) -> None:
    """Check FILE (JSONL, JSON, CSV, text or a `datasets` folder): errors exit 1, warnings are listed."""
    from ..finetune.lint import lint

    report = lint(file, format=fmt, base=base, max_seq_len=max_seq_len, eval_path=eval_file,
                  settings=common.get_settings())
    if as_json:
        emit_json(report.to_dict())
    else:
        print_report(report)
    if not report.ok:
        sys.exit(1)


def print_report(report) -> None:
    """The human-readable report (the same content as --json, shortened)."""
    d = report.to_dict()
    status = click.style("OK", fg="green") if report.ok else click.style(f"{len(report.errors)} error(s)", fg="red")
    click.echo(f"{report.path}: {report.format}, {report.n} record(s) — {status}")
    for e in report.errors:
        where = f"{report.path}:{e.line}" if e.line is not None else report.path
        click.echo(f"  {click.style('error', fg='red')} {where} (line {e.line}): {e.problem}" if e.line is not None
                   else f"  {click.style('error', fg='red')} {where}: {e.problem}")
    if report.warnings:
        click.echo(f"\nwarnings ({len(report.warnings)}):")
        kinds: dict[str, list] = {}
        for w in report.warnings:
            kinds.setdefault(w.kind, []).append(w)
        for kind, ws in kinds.items():
            for w in ws[:MAX_SHOWN]:
                where = f"line {w.line}" if w.line is not None else "file"
                click.echo(f"  {click.style(kind, fg='yellow')} {where}: {w.detail}")
            if len(ws) > MAX_SHOWN:
                click.echo(f"  … and {len(ws) - MAX_SHOWN} more {kind} warnings (all of them with --json)")
    s = d["stats"]
    if s["tokens"]:
        t = s["tokens"]
        click.echo(f"\ntokens ({report.base}): min {t['min']}, p50 {t['p50']}, p95 {t['p95']}, max {t['max']}; "
                   f"duplicates {s['duplicates']}, too long {s['too_long']}, pii {s['pii']}")
        _print_histogram(d["histogram"], report.max_seq_len)
    if report.example:
        _print_example(report.example)


def _print_histogram(hist: list[dict], cutoff: int | None) -> None:
    top = max((b["count"] for b in hist), default=0) or 1
    for b in hist:
        bar = "█" * max(1 if b["count"] else 0, round(30 * b["count"] / top))
        over = cutoff is not None and b["to"] > cutoff
        label = f"{b['from']:>6}–{b['to']:<6}"
        line = f"  {label} {bar} {b['count']}"
        click.echo(click.style(line, fg="red") if over and b["count"] else line)
    if cutoff:
        click.echo(f"  (red: longer than --max-seq-len {cutoff}, or partly so)")


def _print_example(ex: dict) -> None:
    click.echo(f"\nexample (line {ex['line']}, chat template: {ex['template']}) — "
               f"{ex['trained_tokens']} of {ex['tokens']} tokens trained on, shown ⟦like this⟧:")
    parts = []
    for seg in ex["segments"]:
        parts.append(click.style(f"⟦{seg['text']}⟧", fg="green", bold=True) if seg["train"] else seg["text"])
    click.echo("".join(parts))
    if ex.get("note"):
        click.echo(f"note: {ex['note']}")
