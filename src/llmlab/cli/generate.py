"""``llmlab generate``: one completion (or chat turn) from the command line."""
from __future__ import annotations

import sys

import click

from .common import emit_json, generation_options, handle_errors, json_option, model_options, open_model, split_options


@click.command()
@click.argument("prompt")
@model_options
@generation_options
@click.option("--chat", "as_chat", is_flag=True, help="Send PROMPT as a user message with the model's chat template.")
@click.option("--system", default=None, help="System prompt (implies --chat).")
@json_option
@handle_errors
def generate(prompt: str, model, backend, as_chat: bool, system, as_json: bool, **kwargs) -> None:
    """Generate text after PROMPT ("-" reads it from stdin).

    \b
    llmlab generate "The capital of France is" --max-new-tokens 16 --json
    llmlab generate "Write a haiku" --chat --temperature 0.8 --seed 42 -n 3
    """
    if prompt == "-":
        prompt = sys.stdin.read()
    gen, load = split_options(kwargs)
    m = open_model(model, backend, load)
    try:
        if as_chat or system:
            msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
            stream = m.stream_chat(msgs, **gen)
        else:
            stream = m.stream(prompt, **gen)
        n = gen.get("num_return_sequences", 1)
        if as_json:
            for _ in stream:
                pass
        else:
            for d in stream:
                if n == 1:
                    click.echo(d.text, nl=False)
            if n == 1:
                click.echo()
        c = stream.completion
        if as_json:
            emit_json(c.to_dict())
        elif n > 1:
            for i, t in enumerate(c.texts):
                click.echo(f"--- [{i + 1}] ---\n{t}")
        click.echo(f"[{c.usage.completion_tokens} tokens, {c.tokens_per_s:.1f} tok/s, {c.backend}]", err=True)
    finally:
        m.close()
