"""``llmlab datasets``: list, info, pull, path and rm — a thin layer over :mod:`llmlab.datasets`.

(``llmlab data`` is the other group: it lints a fine-tuning file.)
"""
from __future__ import annotations

import click

from .common import emit_json, get_settings, handle_errors, json_option


@click.group()
def datasets() -> None:
    """Bundled course datasets and public Korean sets you can pull (licence and size shown first)."""


def _size(n: int | None, approx: bool = False) -> str:
    if n is None:
        return "-"
    s = f"{n / 1024**2:.1f} MiB" if n >= 1024**2 else f"{n / 1024:.0f} KiB"
    return ("~" + s) if approx else s


@datasets.command("list")
@json_option
@handle_errors
def list_cmd(as_json: bool) -> None:
    """Every dataset llmlab knows: bundled ones (ready) and catalog ones (pull first).

    \b
    llmlab datasets list
    llmlab datasets list --json
    """
    from ..datasets import list_datasets
    from .models import _table

    infos = list_datasets(get_settings())
    if as_json:
        emit_json({"datasets": [i.to_dict() for i in infos]})
        return
    rows = [[i.name, i.kind, ("bundled" if i.available else "missing") if i.bundled else ("pulled" if i.available else "pull"), i.licence,
             _size(i.size, approx=not i.available and any(d["approx_size"] for d in i.download)), i.source]
            for i in infos]
    click.echo(_table(["NAME", "KIND", "STATUS", "LICENCE", "SIZE", "SOURCE"], rows))
    click.echo("\nDetails: llmlab datasets info NAME   Files for other commands: llmlab datasets path NAME")


@datasets.command("info")
@click.argument("name")
@json_option
@handle_errors
def info_cmd(name: str, as_json: bool) -> None:
    """Licence, source, size and files of one dataset (nothing is downloaded)."""
    from ..datasets import describe

    i = describe(name, get_settings())
    if as_json:
        emit_json(i.to_dict())
        return
    click.echo(f"{i.name} ({i.kind}, {'bundled' if i.bundled else 'Hugging Face Hub'}): {i.description}")
    click.echo(f"licence: {i.licence} ({i.licence_url})")
    click.echo(f"source:  {i.source}")
    if i.repo:
        click.echo(f"repo:    {i.repo} @ {i.revision}")
        for d in i.download:
            sha = f" sha256 {d['sha256'][:16]}…" if d["sha256"] else ""
            click.echo(f"  {d['file']}  {_size(d['size'], d['approx_size'])}{sha}")
    if i.needs_licence_acceptance:
        click.echo(f"pull needs --accept-licence (gated, non-commercial or no-derivatives): llmlab datasets pull {i.name} --accept-licence")
    if i.available:
        click.echo(f"path:    {i.path}  ({_size(i.size)})")
        for role, p in i.files.items():
            click.echo(f"  {role}: {p}")
    elif not i.bundled:
        click.echo(f"not pulled yet: llmlab datasets pull {i.name}")


@datasets.command("pull")
@click.argument("name")
@click.option("--accept-licence", is_flag=True, help="Accept a gated, non-commercial or no-derivatives licence.")
@click.option("--no-progress", is_flag=True, help="No progress bar (lines on stderr still say what happens).")
@json_option
@handle_errors
def pull_cmd(name: str, accept_licence: bool, no_progress: bool, as_json: bool) -> None:
    """Download a catalog dataset at its pinned revision, verify it and convert it to the lab's format.

    \b
    llmlab datasets pull naver-news-summ
    llmlab datasets pull korquad-v1 --accept-licence
    An interrupted download resumes on the next call. HF_TOKEN (gated sets), HF_ENDPOINT and
    HF_HUB_OFFLINE are honoured.
    """
    from ..datasets import pull

    r = pull(name, accept_licence=accept_licence, progress=not no_progress, settings=get_settings(),
             log_line=lambda s: click.echo(s, err=True))
    if as_json:
        emit_json(r.to_dict())
        return
    click.echo(r.path)
    for role, p in r.files.items():
        click.echo(f"  {role}: {p}")


@datasets.command("path")
@click.argument("name")
@click.option("--file", "role", default=None, metavar="ROLE",
              help="One file of the set by its role (dev, train, questions, documents, corpus, …).")
@json_option
@handle_errors
def path_cmd(name: str, role: str | None, as_json: bool) -> None:
    """Print the folder (or one file) of a usable dataset, for other commands.

    \b
    llmlab rag ingest "$(llmlab datasets path course_rag --file documents)"
    llmlab eval translate --data "$(llmlab datasets path course_mt --file dev)"
    """
    from ..datasets import file, path

    p = file(name, role, get_settings()) if role else path(name, get_settings())
    if as_json:
        emit_json({"name": name, "path": str(p)})
        return
    click.echo(str(p))


@datasets.command("rm")
@click.argument("name")
@json_option
@handle_errors
def rm_cmd(name: str, as_json: bool) -> None:
    """Remove a pulled dataset (its converted files and its downloads)."""
    from ..datasets import remove

    r = remove(name, get_settings())
    if as_json:
        emit_json(r.to_dict())
        return
    click.echo(f"removed {name}: {_size(r.freed_bytes)} freed")
