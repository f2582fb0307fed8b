"""``llmlab task``: summarize, translate, qa, classify, extract with Korean-aware prompts."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click

from ..errors import InputFileError
from . import common
from .common import emit_json, generation_options, handle_errors, json_option, model_options, split_options


@click.group()
def task() -> None:
    """Task presets: summarize, translate, qa, classify, extract."""


def read_input(source: str, *, allow_text: bool = False) -> str:
    """``-`` reads stdin; an existing file is read; otherwise (if allowed) the argument is the text."""
    if source == "-":
        return sys.stdin.read()
    p = Path(source)
    if p.is_file():
        try:
            return p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputFileError(p, f"cannot read as UTF-8 text: {e}") from None
    if allow_text:
        return source
    raise InputFileError(p, "file not found (use - to read stdin)")


def _run(fn: Callable[..., Any], model, backend, kwargs: dict[str, Any], as_json: bool, *args, **task_kwargs) -> None:
    template = task_kwargs.pop("template", None)
    gen, load = split_options(kwargs)
    m = common.open_model(model, backend, load)
    try:
        res = fn(m, *args, template=template, **task_kwargs, **gen)
    finally:
        m.close()
    if as_json:
        emit_json(res.to_dict())
        return
    click.echo(res.text)
    extra = {k: v for k, v in res.to_dict().items()
             if k in ("strategy", "chunks", "levels", "found", "valid", "errors", "constrained", "source_lang")}
    if extra:
        click.echo("[" + ", ".join(f"{k}={v}" for k, v in extra.items()) + "]", err=True)
    u = res.usage
    click.echo(f"[{res.to_dict()['calls']} call(s), {u['prompt_tokens']}+{u['completion_tokens']} tokens, "
               f"{res.latency_s:.2f}s]", err=True)


def without_option(name: str):
    """Drop a shared option (applied above ``model_options``): ``qa --context`` names the
    context file, as the other commands' ``--context`` names the window size."""

    def deco(f):
        f.__click_params__ = [p for p in getattr(f, "__click_params__", []) if p.name != name]
        return f

    return deco


template_option = click.option("--template", default=None, help="Use this template (library name or YAML path) instead.")


@task.command()
@click.argument("source")
@click.option("--style", type=click.Choice(["sentence", "bullet"]), default="sentence", show_default=True)
@click.option("--length", type=int, default=None, help="At most this many sentences / bullet points.")
@click.option("--language", default=None, help="Language of the summary (default: the document's).")
@template_option
@model_options
@generation_options
@json_option
@handle_errors
def summarize(source: str, style: str, length, language, template, model, backend, as_json: bool, **kwargs) -> None:
    """Summarize SOURCE (a file, or - for stdin); long texts run map-reduce."""
    from ..tasks import summarize as fn

    _run(fn, model, backend, kwargs, as_json, read_input(source), style=style, length=length, language=language,
         template=template)


@task.command()
@click.argument("source")
@click.option("--to", "to", default="en", show_default=True, help="Target language: en, ko (or a language name).")
@click.option("--from", "source_lang", default=None, help="Source language (default: detected).")
@template_option
@model_options
@generation_options
@json_option
@handle_errors
def translate(source: str, to: str, source_lang, template, model, backend, as_json: bool, **kwargs) -> None:
    """Translate SOURCE (a file, - for stdin, or the text itself)."""
    from ..tasks import translate as fn

    _run(fn, model, backend, kwargs, as_json, read_input(source, allow_text=True), to=to, source=source_lang,
         template=template)


@task.command()
@click.argument("question")
@click.option("--context", "context_file", required=True, help="File with the context (- for stdin).")
@click.option("--n-ctx", "n_ctx", type=int, default=None, help="Context window to allocate (tokens).")
@template_option
@without_option("n_ctx")
@model_options
@generation_options
@json_option
@handle_errors
def qa(question: str, context_file: str, template, model, backend, as_json: bool, **kwargs) -> None:
    """Answer QUESTION from the --context file only (says when the answer is not there)."""
    from ..tasks import answer_question

    _run(answer_question, model, backend, kwargs, as_json, read_input(context_file), question, template=template)


@task.command()
@click.argument("source")
@click.option("--labels", required=True, help="Comma-separated labels, e.g. positive,negative.")
@template_option
@model_options
@generation_options
@json_option
@handle_errors
def classify(source: str, labels: str, template, model, backend, as_json: bool, **kwargs) -> None:
    """Classify SOURCE (a file, - for stdin, or the text itself) into one of --labels."""
    from ..tasks import classify as fn

    _run(fn, model, backend, kwargs, as_json, read_input(source, allow_text=True), labels, template=template)


@task.command()
@click.argument("source")
@click.option("--schema", "schema_file", required=True, help="JSON schema file the output must follow.")
@template_option
@model_options
@generation_options
@json_option
@handle_errors
def extract(source: str, schema_file: str, template, model, backend, as_json: bool, **kwargs) -> None:
    """Extract JSON following --schema from SOURCE (a file, - for stdin, or the text)."""
    from ..tasks import extract as fn
    from ..tasks.extract import load_schema

    schema = load_schema(schema_file)
    _run(fn, model, backend, kwargs, as_json, read_input(source, allow_text=True), schema, template=template)
