"""Every door to generation (library, CLI, OpenAI API, lab API, web UI) takes the same values.

The expectations are written out here by hand (not read from ``ParamSpec``), so a range that
drifts in any door — or in ``GenerationParams`` itself — fails this test.
"""
from __future__ import annotations

from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner

from llmlab.errors import LLMLabError
from llmlab.types import GenerationParams

pytest.importorskip("pydantic", reason="the server's request models need the server extra")

from llmlab.server.param_fields import OPENAI_NARROWER  # noqa: E402

# (parameter, value, accepted by llmlab's rules) — the edges: min, max, just outside, 0, unset
EDGES = [
    ("temperature", None, True), ("temperature", 0, True), ("temperature", 0.005, False),
    ("temperature", 0.01, True), ("temperature", 2.0, True), ("temperature", 2.5, True),
    ("temperature", 5.0, True), ("temperature", 5.01, False), ("temperature", -0.1, False),
    ("top_p", None, True), ("top_p", 0, False), ("top_p", 0.01, True), ("top_p", 1.0, True), ("top_p", 1.01, False),
    ("top_k", None, True), ("top_k", -1, False), ("top_k", 0, True), ("top_k", 100_000, True),
    ("top_k", 100_001, False),
    ("repetition_penalty", None, True), ("repetition_penalty", 0.0, False), ("repetition_penalty", 0.01, True),
    ("repetition_penalty", 10.0, True), ("repetition_penalty", 10.5, False),
    ("no_repeat_ngram_size", None, True), ("no_repeat_ngram_size", -1, False), ("no_repeat_ngram_size", 0, True),
    ("no_repeat_ngram_size", 64, True), ("no_repeat_ngram_size", 65, False),
    ("num_return_sequences", None, True), ("num_return_sequences", 0, False), ("num_return_sequences", 1, True),
    ("num_return_sequences", 64, True), ("num_return_sequences", 65, False),
    ("seed", None, True), ("seed", -1, False), ("seed", 0, True), ("seed", 2**63 - 1, True), ("seed", 2**63, False),
    ("max_new_tokens", None, True), ("max_new_tokens", -1, False), ("max_new_tokens", 0, True),
    ("max_new_tokens", 100_000, True),
    ("logprobs", None, True), ("logprobs", -1, False), ("logprobs", 0, True), ("logprobs", 20, True),
    ("logprobs", 21, False),
]

#: the one declared difference: OpenAI's protocol caps temperature at 2
OPENAI_REFUSES = {("temperature", 2.5), ("temperature", 5.0)}
#: what each API door calls a parameter (absent: that door has no such field)
OPENAI_NAMES = {"max_new_tokens": "max_tokens", "num_return_sequences": "n", "logprobs": "logprobs"}
LAB_FIELDS = {"temperature", "top_p", "top_k", "repetition_penalty", "no_repeat_ngram_size", "seed", "max_new_tokens"}
BIG = SimpleNamespace(max_tokens_ceiling=10**9, max_n=64)  # server policies set wide: the ranges are under test


def library(name, value):
    return GenerationParams.from_kwargs(**{name: value})


@click.command()
def _cli_probe(**kwargs):
    from llmlab.cli.common import split_options

    gen, _ = split_options(kwargs)
    click.echo(repr(GenerationParams.from_kwargs(**gen)))


def cli(name, value):
    from llmlab.cli.common import generation_options, handle_errors

    command = generation_options(handle_errors(_cli_probe.callback))
    args = [] if value is None else ["--" + name.replace("_", "-"), str(value)]
    r = CliRunner().invoke(click.command()(command), args)
    if r.exit_code:
        raise LLMLabError(r.output)
    return r.output


def openai(name, value):
    from pydantic import ValidationError

    from llmlab.server.openai_routes import generation_params
    from llmlab.server.schemas import ChatCompletionRequest, CompletionRequest

    field = OPENAI_NAMES.get(name, name)
    body = {"model": "m", **({} if value is None else {field: value})}
    try:
        if name == "logprobs":  # the completions endpoint takes k; chat takes logprobs=true + top_logprobs=k
            req = CompletionRequest.model_validate({**body, "prompt": "x"})
            p = generation_params(req, BIG, chat=False)
        else:
            req = ChatCompletionRequest.model_validate({**body, "messages": [{"role": "user", "content": "x"}]})
            p = generation_params(req, BIG, chat=True)
    except ValidationError as e:
        raise LLMLabError(str(e)) from None
    return GenerationParams.from_kwargs(**p)


def lab(name, value):
    from pydantic import ValidationError

    from llmlab.server.lab_schemas import GenParams

    try:
        p = GenParams.model_validate({} if value is None else {name: value}).kwargs(ceiling=10**9)
    except ValidationError as e:
        raise LLMLabError(str(e)) from None
    return GenerationParams.from_kwargs(**p)


def webui(name, value):
    from llmlab.webui import params

    start = params.start_values({"temperature": 0.2, "top_p": 0.9})  # the bundled model's card
    values = list(start)
    if value is not None:
        values[params.NAMES.index(name)] = str(value) if name == "seed" else value
    return params.to_kwargs(values, start)


DOORS = {"library": library, "cli": cli, "openai": openai, "lab": lab, "webui": webui}


def accepts(door, name, value) -> bool:
    try:
        DOORS[door](name, value)
    except LLMLabError:
        return False
    return True


CASES = [(door, *edge) for door in DOORS for edge in EDGES if door != "lab" or edge[0] in LAB_FIELDS]


@pytest.mark.parametrize("door, name, value, ok", CASES)
def test_every_door_accepts_and_refuses_the_same_values(door, name, value, ok):
    if door == "openai" and (name, value) in OPENAI_REFUSES:
        ok = False
    assert accepts(door, name, value) is ok, (door, name, value)


def test_the_openai_difference_is_declared_once():
    assert OPENAI_NARROWER == {"temperature": {"maximum": 2}}


def test_unset_values_resolve_to_the_model_defaults_everywhere():
    """A call that sets nothing gets the model card's defaults in every door (not 1.0 / 1.0)."""
    card = {"temperature": 0.2, "top_p": 0.9}

    def resolved(kwargs):
        p = GenerationParams.from_kwargs(**{**card, **kwargs}).to_dict()
        p["max_new_tokens"] = p["max_new_tokens"] or GenerationParams.DEFAULT_MAX_NEW_TOKENS
        return p

    from llmlab.cli.common import split_options
    from llmlab.server.lab_schemas import GenParams
    from llmlab.server.openai_routes import generation_params
    from llmlab.server.schemas import ChatCompletionRequest
    from llmlab.webui import params

    req = ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    start = params.start_values(card)
    doors = {
        "cli": split_options({n: None for n in ("temperature", "top_p", "seed")} | {"stop": ()})[0],
        "openai": generation_params(req, BIG, chat=True),
        "lab": GenParams().kwargs(ceiling=10**9),
        "webui": params.to_kwargs(start, start),
    }
    expected = resolved({})
    assert expected["temperature"] == 0.2 and expected["top_p"] == 0.9
    for door, kwargs in doors.items():
        assert resolved(kwargs) == expected, door


def test_the_web_ui_sends_what_the_user_changed_even_a_generic_default():
    from llmlab.webui import params

    start = params.start_values({"temperature": 0.2, "top_p": 0.9})
    values = list(start)
    values[params.NAMES.index("temperature")] = 1.0  # the library's default, not the model's
    assert params.to_kwargs(values, start) == {"temperature": 1.0}
