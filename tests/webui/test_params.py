"""Generation controls → GenerationParams keyword arguments."""
from __future__ import annotations

import pytest

from llmlab.errors import InvalidParameterError
from llmlab.types import GenerationParams
from llmlab.webui import params

DEFAULTS = [256, 0, 1.0, 1.0, 50, 1.0, 0, 1, "auto", "", "", "", "error", ""]


def test_every_generation_parameter_has_a_control_and_an_explanation():
    fields = set(GenerationParams.__dataclass_fields__)
    assert set(params.NAMES) == fields
    assert set(params.HELP) == fields
    assert all(" / " in h for h in params.HELP.values())  # Korean / English


def test_untouched_controls_mean_the_library_defaults():
    kw = params.to_kwargs(DEFAULTS)
    assert GenerationParams.from_kwargs(**kw) == GenerationParams(max_new_tokens=256)


def test_optional_values_are_parsed():
    values = dict(zip(params.NAMES, DEFAULTS))
    values.update(seed=" 7 ", stop="\n</s>\n다음\n", logprobs="3", do_sample="greedy", max_length=100,
                  json_schema='{"type": "object"}')
    kw = params.to_kwargs([values[n] for n in params.NAMES])
    assert kw["seed"] == 7 and kw["stop"] == ["</s>", "다음"] and kw["logprobs"] == 3
    assert kw["do_sample"] is False and kw["max_length"] == 100 and kw["json_schema"] == {"type": "object"}


@pytest.mark.parametrize("field, value, message", [
    ("json_schema", "{not json", "json_schema is not valid JSON"),
    ("seed", "abc", "seed must be a whole number"),
    ("num_return_sequences", 3, "needs sampling"),
])
def test_bad_values_say_what_is_wrong(field, value, message):
    values = dict(zip(params.NAMES, DEFAULTS))
    values[field] = value
    if field == "num_return_sequences":
        values["do_sample"] = "greedy"
    with pytest.raises(InvalidParameterError, match=message):
        params.to_kwargs([values[n] for n in params.NAMES])
