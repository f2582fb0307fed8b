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


def generation_options(f: Callable) -> Callable:
    """The generation controls, named as in Hugging Face generate."""
    opts = [
        click.option("--max-new-tokens", type=int, default=None, help="Tokens to generate at most (default 256)."),
        click.option("--max-length", type=int, default=None, help="Prompt + generated tokens at most."),
        click.option("--temperature", "-t", type=float, default=None, help="Sampling temperature; 0 = greedy."),
        click.option("--top-p", type=float, default=None, help="Nucleus sampling: smallest set with this mass."),
        click.option("--top-k", type=int, default=None, help="Sample among the k most likely tokens (0 = off)."),
        click.option("--repetition-penalty", type=float, default=None, help="> 1 discourages repeated tokens."),
        click.option("--no-repeat-ngram-size", type=int, default=None, help="Never repeat an n-gram of this size."),
        click.option("--num-return-sequences", "-n", type=int, default=None, help="Independent samples to return."),
        click.option("--do-sample/--greedy", "do_sample", default=None, help="Sample, or take the most likely token."),
        click.option("--seed", type=int, default=None, help="Seed for reproducible sampling."),
        click.option("--stop", multiple=True, help="Stop string (repeatable); not included in the output."),
        click.option("--logprobs", type=int, default=None, help="Report log-probabilities with K alternatives."),
        click.option("--truncate", type=click.Choice(["error", "left"]), default=None,
                     help="Too-long prompt: error (default) or drop the oldest tokens."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


GENERATION_KEYS = ("max_new_tokens", "max_length", "temperature", "top_p", "top_k", "repetition_penalty",
                   "no_repeat_ngram_size", "num_return_sequences", "do_sample", "seed", "stop", "logprobs", "truncate")
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
