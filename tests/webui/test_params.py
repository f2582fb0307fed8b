"""Generation controls → GenerationParams keyword arguments."""
from __future__ import annotations

import pytest

from llmlab.errors import InvalidParameterError
from llmlab.types import GenerationParams
from llmlab.webui import params

CARD = {"temperature": 0.2, "top_p": 0.9}  # the bundled model's recommended defaults
DEFAULTS = params.start_values()  # a model without recommended defaults (the fake one): the library's


def test_every_generation_parameter_has_a_control_and_an_explanation():
    fields = set(GenerationParams.__dataclass_fields__)
    assert set(params.NAMES) == fields
    assert set(params.HELP) == fields
    assert all(" / " in h for h in params.HELP.values())  # Korean / English


def test_the_controls_start_at_the_models_defaults_and_untouched_ones_send_nothing():
    start = params.start_values(CARD)
    shown = dict(zip(params.NAMES, start))
    assert (shown["temperature"], shown["top_p"], shown["max_new_tokens"]) == (0.2, 0.9, 256)
    assert params.to_kwargs(start, start) == {}
    # without a starting point every value is sent, and they are the model's defaults
    assert GenerationParams.from_kwargs(**params.to_kwargs(start)) == GenerationParams(max_new_tokens=256, **CARD)


def test_the_bundled_models_defaults_come_from_its_card():
    from llmlab.config import Settings

    assert params.model_defaults(Settings(), "smollm2-135m") == CARD
    assert params.model_defaults(Settings(), "no/such-model-here") == {}


def test_optional_values_are_parsed():
    values = dict(zip(params.NAMES, params.start_values()))
    values.update(seed=" 7 ", stop="\n</s>\n다음\n", logprobs=3, do_sample="greedy", max_length=100,
                  json_schema='{"type": "object"}')
    kw = params.to_kwargs([values[n] for n in params.NAMES])
    assert kw["seed"] == 7 and kw["stop"] == ["</s>", "다음"] and kw["logprobs"] == 3
    assert kw["do_sample"] is False and kw["max_length"] == 100 and kw["json_schema"] == {"type": "object"}


@pytest.mark.parametrize("field, value, message", [
    ("json_schema", "{not json", "json_schema is not valid JSON"),
    ("seed", "abc", "seed must be a whole number"),
    ("top_k", 2.5, "top_k must be a whole number"),
    ("num_return_sequences", 3, "needs sampling"),
])
def test_bad_values_say_what_is_wrong(field, value, message):
    values = dict(zip(params.NAMES, params.start_values()))
    values[field] = value
    if field == "num_return_sequences":
        values["do_sample"] = "greedy"
    with pytest.raises(InvalidParameterError, match=message):
        params.to_kwargs([values[n] for n in params.NAMES])


def test_slider_and_box_ranges_are_the_parameters_ranges():
    gr = pytest.importorskip("gradio", reason="the web UI needs gradio")
    with gr.Blocks():
        controls = dict(zip(params.NAMES, params.controls(CARD, prefix="t")))
    assert isinstance(controls["temperature"], gr.Slider)
    assert (controls["temperature"].minimum, controls["temperature"].maximum) == (0, 5)
    assert (controls["top_p"].minimum, controls["top_p"].maximum) == (0.01, 1)
    assert (controls["repetition_penalty"].minimum, controls["repetition_penalty"].maximum) == (0.01, 10)
    assert (controls["top_k"].minimum, controls["top_k"].maximum) == (0, 100_000)
    assert controls["temperature"].value == 0.2 and controls["max_new_tokens"].value == 256
    for name, c in controls.items():  # every bounded control's ends are values the library accepts
        for end in (getattr(c, "minimum", None), getattr(c, "maximum", None)):
            if end is not None:
                GenerationParams.check(name, int(end) if GenerationParams.spec(name).kind is int else end)


def test_an_emptied_max_length_box_means_unset():
    """Browsers send an emptied number box as 0; max_length (≥ 1 when set) takes that as "off"."""
    from llmlab.webui import params

    assert params._parse("max_length", 0) is None and params._parse("max_length", 7) == 7
    assert params._parse("max_new_tokens", 0) == 0  # 0 is a real value there
