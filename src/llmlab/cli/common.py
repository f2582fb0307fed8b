"""Shared CLI conventions: ``--json`` output, errors to stderr with exit code 1, settings.

Every command follows them: with ``--json`` one JSON object goes to stdout (streaming or
multi-turn commands print one object per line); progress and logs go to stderr; an
:class:`~llmlab.errors.LLMLabError` prints ``error: …`` to stderr and exits 1.
"""
from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import click

from ..errors import LLMLabError
from ..types import GenerationParams


def emit_json(obj: Any) -> None:
    """Print one JSON object on one line of stdout (UTF-8, not ASCII-escaped)."""
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")(f)


def fail(message: str) -> "NoReturn":  # noqa: F821
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def handle_errors(f: Callable) -> Callable:
    """Turn llmlab errors into a clear message on stderr and exit code 1."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except LLMLabError as e:
            fail(str(e))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def get_settings(**overrides: Any):
    from ..config import load_settings

    return load_settings(**overrides)


# -- options shared by every command that loads a model and generates ---------------------
def model_options(f: Callable) -> Callable:
    """--model/--backend and loading options (threads, context, device, dtype, load-in)."""
    opts = [
        click.option("--model", "-m", "model", default=None, help="Model: bundled name, path, cached repo id or openai:MODEL."),
        click.option("--backend", default=None,  # any registered backend, plugins too (checked when loading)
                     help="Runtime to use: llamacpp, transformers, openai or a plugin's (default: from the model)."),
        click.option("--threads", type=int, default=None, help="CPU threads (llama.cpp / torch)."),
        click.option("--context", "n_ctx", type=int, default=None, help="Context window to allocate (tokens)."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="transformers device."),
        click.option("--dtype", default=None, help="transformers dtype (auto, float32, bfloat16, float16)."),
        click.option("--load-in", "load_in", type=click.Choice(["4bit", "8bit"]), default=None,
                     help="bitsandbytes quantized loading on a CUDA GPU."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


#: flags whose name is not just ``--name-with-dashes`` (short forms, the greedy switch)
_FLAGS = {"temperature": ("--temperature", "-t"), "num_return_sequences": ("--num-return-sequences", "-n"),
          "do_sample": ("--do-sample/--greedy",)}
#: parameters without a generation flag: a JSON schema is given by the commands that take one
_NO_FLAG = ("json_schema",)


def _checked(name: str) -> Callable:
    """A click callback that refuses a value breaking ``GenerationParams``' rule for ``name``."""
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None or value == ():
            return value
        try:
            GenerationParams.check(name, list(value) if isinstance(value, tuple) else value)
        except LLMLabError as e:
            raise click.BadParameter(str(e).split(": ", 1)[-1]) from None
        return value

    return callback


def _generation_option(name: str) -> Callable:
    spec = GenerationParams.spec(name)
    flags = _FLAGS.get(name, ("--" + name.replace("_", "-"),))
    help_ = f"{spec.en} [{spec.rule()}]" if spec.kind in (int, float) else spec.en
    if spec.kind is bool:
        return click.option(*flags, name, default=None, help=help_)
    if spec.kind is list:
        return click.option(*flags, name, multiple=True, callback=_checked(name), help=spec.en + " (repeatable)")
    kind = click.Choice(list(spec.choices)) if spec.choices else spec.kind
    return click.option(*flags, name, type=kind, default=None, callback=_checked(name), help=help_)


def generation_options(f: Callable) -> Callable:
    """The generation controls, named as in Hugging Face generate — generated from ``GenerationParams``.

    Names, types, ranges and help come from the parameters' :class:`~llmlab.types.ParamSpec`;
    an unset flag is left out, so the model's recommended defaults apply (``Model.resolve``).
    """
    for name in reversed(GENERATION_KEYS):
        f = _generation_option(name)(f)
    return f


GENERATION_KEYS = tuple(n for n in GenerationParams.specs() if n not in _NO_FLAG)
LOAD_KEYS = ("threads", "n_ctx", "device", "dtype", "load_in")


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(generation params, model-loading options) from a command's keyword arguments, unset ones dropped."""
    gen = {k: kwargs.pop(k) for k in GENERATION_KEYS if k in kwargs}
    gen = {k: v for k, v in gen.items() if v is not None and v != ()}
    if "stop" in gen:
        gen["stop"] = list(gen["stop"])
    load = {k: kwargs.pop(k) for k in LOAD_KEYS if k in kwargs}
    return gen, {k: v for k, v in load.items() if v is not None}


def open_model(model: str | None, backend: str | None, load: dict[str, Any]):
    """Load a model for a command (errors are LLMLabErrors, shown by handle_errors)."""
    from ..models.model import load_model

    return load_model(model, backend=backend, **load)
