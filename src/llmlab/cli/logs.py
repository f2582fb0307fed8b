"""``llmlab logs`` and ``llmlab usage``: read, sum and purge the run ledger."""
from __future__ import annotations

import click

from .common import emit_json, get_settings, handle_errors, json_option


def _ledger():
    from ..ledger import open_ledger

    return open_ledger(get_settings())


@click.group(invoke_without_command=True)
@click.option("--limit", type=int, default=20, show_default=True, help="How many runs (newest first).")
@click.option("--model", default=None, help="Only this model.")
@click.option("--kind", default=None, help="Only this kind (generate, chat, …).")
@click.option("--session", default=None, help="Only this chat session.")
@click.option("--experiment", default=None, help="Only this experiment id.")
@click.option("--search", default=None, help="Only runs whose prompt or output contains this text.")
@json_option
@click.pass_context
@handle_errors
def logs(ctx, limit, model, kind, session, experiment, search, as_json) -> None:
    """Show recorded runs (every generation is recorded in the ledger)."""
    if ctx.invoked_subcommand is not None:
        return
    runs = _ledger().runs(limit, model=model, kind=kind, session=session, experiment=experiment, search=search)
    if as_json:
        emit_json({"runs": [r.to_dict() for r in runs]})
        return
    for r in runs:
        text = (r.output[0] if r.output else "").replace("\n", " ")
        asked = (r.prompt or (r.messages[-1]["content"] if r.messages else "")).replace("\n", " ")
        click.echo(f"#{r.id} {r.created_at[:19]} {r.kind:<8} {r.model} ({r.backend}) "
                   f"{r.prompt_tokens}+{r.completion_tokens} tok {r.latency_s or 0:.2f}s ${r.cost_usd:.6f}")
        click.echo(f"    > {asked[:100]}")
        click.echo(f"    < {text[:100]}")


@logs.command()
@click.option("--before", default=None, help="Delete only runs recorded before this date (YYYY-MM-DD).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@handle_errors
def purge(before, yes, as_json) -> None:
    """Delete recorded runs and chat history (all, or older than --before)."""
    what = f"runs recorded before {before}" if before else "ALL recorded runs and chat sessions"
    if not yes and not as_json:
        click.confirm(f"Delete {what}?", abort=True, err=True)
    n = _ledger().purge(before=before)
    if as_json:
        emit_json({"deleted": n, "before": before})
    else:
        click.echo(f"deleted {n} run(s)")


@click.command()
@click.option("--since", default=None, help="Only from this date (YYYY-MM-DD).")
@json_option
@handle_errors
def usage(since, as_json) -> None:
    """Tokens and cost per model and per day."""
    rows = _ledger().usage(since=since)
    totals: dict[str, dict] = {}
    for r in rows:
        t = totals.setdefault(r["model"], {"model": r["model"], "calls": 0, "prompt_tokens": 0,
                                           "completion_tokens": 0, "total_tokens": 0, "cost_usd": 0.0})
        for k in ("calls", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"):
            t[k] += r[k]
    if as_json:
        emit_json({"by_day": rows, "by_model": list(totals.values())})
        return
    click.echo(f"{'day':<11}{'model':<28}{'calls':>6}{'prompt':>9}{'output':>9}{'cost $':>11}")
    for r in rows:
        click.echo(f"{r['day']:<11}{str(r['model'])[:27]:<28}{r['calls']:>6}{r['prompt_tokens']:>9}"
                   f"{r['completion_tokens']:>9}{r['cost_usd']:>11.6f}")
