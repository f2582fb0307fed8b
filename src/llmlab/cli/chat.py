"""``llmlab chat``: multi-turn chat with streaming, history and resumable sessions.

Interactive in a terminal; when stdin is not a terminal every input line is one user
turn (with ``--json`` each turn prints one JSON object on its own line).
"""
from __future__ import annotations

import sys

import click

from .common import emit_json, generation_options, handle_errors, json_option, model_options, open_model, split_options

HELP = "명령: /exit 종료, /reset 대화 초기화, /history 기록 보기 · commands: /exit, /reset, /history"


@click.command()
@model_options
@generation_options
@click.option("--system", "-s", default=None, help="System prompt.")
@click.option("--session", default=None, help="Session name: saved in the ledger and resumed next time.")
@json_option
@handle_errors
def chat(model, backend, system, session, as_json: bool, **kwargs) -> None:
    """Chat with a model (default: the bundled one)."""
    from ..chat import ChatSession

    gen, load = split_options(kwargs)
    m = open_model(model, backend, load)
    interactive = sys.stdin.isatty() and not as_json
    try:
        cs = ChatSession(m, system=system, session=session)
        if interactive:
            note = f" — {m.info.languages}" if m.info.languages else ""
            click.echo(f"llmlab chat · {m.name} ({m.backend.name}){note}", err=True)
            click.echo(HELP, err=True)
            if cs.history:
                click.echo(f"(resumed session {session!r}: {len(cs.history)} messages)", err=True)
        turn = 0
        while True:
            if interactive:
                try:
                    line = click.prompt(click.style("you", fg="cyan"), prompt_suffix="> ", default="",
                                        show_default=False)
                except (EOFError, click.Abort):
                    click.echo(err=True)
                    break
            else:
                raw = sys.stdin.readline()
                if not raw:
                    break
                line = raw.rstrip("\n")
            text = line.strip()
            if not text:
                continue
            if text in ("/exit", "/quit"):
                break
            if text == "/reset":
                cs.reset()
                click.echo("(history cleared)", err=True)
                continue
            if text == "/history":
                for msg in cs.messages:
                    click.echo(f"{msg.role}: {msg.content}")
                continue
            stream = cs.send(text, **gen)
            if as_json:
                for _ in stream:
                    pass
                c = stream.completion
                emit_json({"turn": turn, "session": session, "user": text, "assistant": c.text, "model": m.name,
                           "backend": c.backend, "usage": c.usage.to_dict(), "latency_s": round(c.latency_s, 4),
                           "tokens_per_s": c.tokens_per_s, "finish_reason": c.finish_reason,
                           "trimmed_messages": cs.trimmed_turns, "chat_template": c.chat_template,
                           "run_id": c.run_id})
            else:
                if interactive:
                    click.echo(click.style("bot> ", fg="green"), nl=False)
                for d in stream:
                    click.echo(d.text, nl=False)
                click.echo()
                c = stream.completion
                if interactive:
                    click.echo(click.style(f"  [{c.usage.completion_tokens} tok · {c.tokens_per_s:.1f} tok/s]",
                                           dim=True), err=True)
            turn += 1
    finally:
        m.close()
