"""``llmlab prompt``: list, show and run templates; run an experiment grid."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidParameterError
from . import common
from .common import emit_json, generation_options, handle_errors, json_option, model_options, split_options


@click.group()
def prompt() -> None:
    """Prompt templates, the pattern library and experiment grids."""


@prompt.command("list")
@json_option
@handle_errors
def list_templates(as_json: bool) -> None:
    """List the built-in prompt patterns."""
    from ..prompts.library import library

    items = [{"name": t.name, "version": t.version, "variables": list(t.variables),
              "description": t.description.strip().splitlines()[0] if t.description else "",
              "json_schema": t.schema is not None} for t in library()]
    if as_json:
        emit_json({"templates": items})
        return
    for t in items:
        click.echo(f"{t['name']:<14} {', '.join(t['variables']):<32} {t['description']}")


@prompt.command("show")
@click.argument("template")
@json_option
@handle_errors
def show(template: str, as_json: bool) -> None:
    """Show a template (library name or YAML path) with its documentation."""
    import yaml

    from ..prompts.library import load_template

    t = load_template(template)
    if as_json:
        emit_json(t.to_dict())
    else:
        click.echo(yaml.safe_dump(t.to_dict(), allow_unicode=True, sort_keys=False), nl=False)


def parse_vars(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` pairs; ``k=@file`` reads the value from a file."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidParameterError(f"--var expects NAME=VALUE, got {pair!r}")
        if value.startswith("@"):
            try:
                value = Path(value[1:]).read_text(encoding="utf-8")
            except OSError as e:
                raise InvalidParameterError(f"--var {key}: cannot read {value[1:]}: {e}") from None
        out[key.strip()] = value
    return out


@prompt.command("run")
@click.argument("template")
@click.option("--var", "pairs", multiple=True, help="Template variable NAME=VALUE (NAME=@file reads a file); repeatable.")
@click.option("--sample", default=None, help="Use the template's documented sample: its language (ko/en) or index.")
@model_options
@generation_options
@json_option
@handle_errors
def run(template: str, pairs: tuple[str, ...], sample: str | None, model, backend, as_json: bool, **kwargs) -> None:
    """Render TEMPLATE (library name or YAML path) and run it on a model.

    \b
    llmlab prompt run few_shot --var text="배송이 빨라요"
    llmlab prompt run json_output --sample en --json
    """
    from ..prompts.library import load_template
    from ..prompts.run import run_template

    tpl = load_template(template)
    variables = {}
    if sample is not None:
        variables = dict(_pick_sample(tpl, sample).vars)
    variables.update(parse_vars(pairs))
    tpl.messages(variables)  # a missing or unknown variable fails before the model loads
    gen, load = split_options(kwargs)
    m = common.open_model(model, backend, load)
    try:
        res = run_template(m, tpl, variables, **gen)
    finally:
        m.close()
    if as_json:
        emit_json(res.to_dict())
        return
    click.echo(res.text)
    if res.structured is not None:
        s = res.structured
        status = "valid" if s.valid else "INVALID: " + "; ".join(s.errors)
        click.echo(f"[schema {status}{' (constrained decoding)' if s.constrained else ''}]", err=True)
    c = res.completion
    click.echo(f"[{c.usage.prompt_tokens}+{c.usage.completion_tokens} tokens, {c.latency_s:.2f}s, {c.backend}]", err=True)


def _pick_sample(tpl, sample: str):
    if not tpl.samples:
        raise InvalidParameterError(f"template {tpl.name!r} has no samples")
    if sample.isdigit():
        i = int(sample)
        if not 0 <= i < len(tpl.samples):
            raise InvalidParameterError(f"template {tpl.name!r} has samples 0..{len(tpl.samples) - 1}")
        return tpl.samples[i]
    for s in tpl.samples:
        if s.lang == sample:
            return s
    langs = ", ".join(sorted({s.lang for s in tpl.samples}))
    raise InvalidParameterError(f"template {tpl.name!r} has no {sample!r} sample; languages: {langs}")


@prompt.command("grid")
@click.argument("grid_file", type=click.Path(dir_okay=False))
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None, help="Write a self-contained HTML report.")
@click.option("--fresh", is_flag=True, help="Start a new experiment instead of resuming finished cells.")
@click.option("--threads", type=int, default=None, help="CPU threads for local models.")
@click.option("--width", type=int, default=None, help="Table width (default: the terminal's).")
@json_option
@handle_errors
def grid(grid_file: str, html_path: str | None, fresh: bool, threads: int | None, width: int | None,
         as_json: bool) -> None:
    """Run every template × model × parameter set × input of GRID_FILE side by side.

    Each cell is recorded in the run ledger under one experiment id; running the same grid
    again resumes it (finished cells are reused, not recomputed).
    """
    from ..ledger import recorder
    from ..prompts.grid import default_loader, expand, load_grid, run_grid
    from ..prompts.report import html_report, text_table

    settings = common.get_settings(threads=threads)  # the local backends read their thread count from settings
    g = load_grid(grid_file)
    ledger = recorder(settings)
    loader = default_loader(settings)
    total = len(expand(g))
    with _progress(total) as bar:
        def progress(done, n, cell):
            bar.update(1)
            if cell.reused:
                bar.set_postfix_str("reused", refresh=False)

        try:
            result = run_grid(g, ledger=ledger, loader=loader, fresh=fresh, progress=progress)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted — finished cells are recorded; run the same command again to resume",
                       err=True)
            sys.exit(130)
    if html_path:
        Path(html_path).write_text(html_report(result), encoding="utf-8")
        click.echo(f"wrote {html_path}", err=True)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(text_table(result, width or shutil.get_terminal_size((120, 40)).columns))


def _progress(total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc="grid", unit="cell", file=sys.stderr, leave=False, dynamic_ncols=True)
