import re

import pytest

from llmlab.errors import InvalidParameterError
from llmlab.types import GenerationParams, Message, coerce_messages


def test_defaults_follow_hf_generate():
    p = GenerationParams()
    assert (p.temperature, p.top_p, p.top_k, p.repetition_penalty) == (1.0, 1.0, 50, 1.0)
    assert p.sampling is True  # temperature 1 > 0 and do_sample unset
    assert p.new_token_budget(10) == GenerationParams.DEFAULT_MAX_NEW_TOKENS


def test_temperature_zero_is_greedy_and_do_sample_false_wins():
    assert GenerationParams(temperature=0).sampling is False
    assert GenerationParams(do_sample=False, temperature=0.7).sampling is False
    assert GenerationParams(do_sample=True, temperature=0.7).sampling is True


def test_max_length_counts_the_prompt_and_max_new_tokens_wins():
    assert GenerationParams(max_length=20).new_token_budget(15) == 5
    assert GenerationParams(max_length=20).new_token_budget(25) == 0
    assert GenerationParams(max_length=20, max_new_tokens=7).new_token_budget(15) == 7


@pytest.mark.parametrize("kw", [
    {"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}, {"top_k": -1}, {"repetition_penalty": 0},
    {"no_repeat_ngram_size": -2}, {"num_return_sequences": 0}, {"logprobs": 50}, {"truncate": "middle"},
    {"max_new_tokens": -1},
])
def test_invalid_values_name_the_parameter(kw):
    with pytest.raises(InvalidParameterError) as e:
        GenerationParams(**kw)
    assert list(kw)[0] in str(e.value)


def test_several_sequences_need_sampling():
    with pytest.raises(InvalidParameterError, match="num_return_sequences"):
        GenerationParams(num_return_sequences=3, do_sample=False)
    assert GenerationParams(num_return_sequences=3).num_return_sequences == 3


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(InvalidParameterError) as e:
        GenerationParams.from_kwargs(temprature=0.5)
    assert "temprature" in str(e.value) and "temperature" in str(e.value)


def test_stop_accepts_a_single_string():
    assert GenerationParams(stop="\n").stop == ["\n"]


def test_messages_are_validated():
    assert coerce_messages("안녕") == [Message("user", "안녕")]
    with pytest.raises(InvalidParameterError, match="role"):
        Message("robot", "hi")
    with pytest.raises(InvalidParameterError):
        coerce_messages([{"role": "user"}])


@pytest.mark.parametrize("kw, message", [
    ({"top_k": True}, "whole number"), ({"top_k": 2.5}, "whole number"), ({"temperature": "hot"}, "a number"),
    ({"temperature": float("nan")}, "0 or 0.01–5"), ({"temperature": 0.005}, "0 or 0.01–5"),
    ({"seed": -1}, "0–2^63−1"), ({"do_sample": "yes"}, "true or false"), ({"json_schema": [1]}, "JSON object"),
])
def test_wrong_types_and_values_are_refused_with_the_rule(kw, message):
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        GenerationParams(**kw)


def test_numpy_numbers_are_numbers():
    np = pytest.importorskip("numpy")
    p = GenerationParams(top_k=np.int64(5), temperature=np.float32(0.5))
    assert p.top_k == 5 and p.temperature == 0.5


def test_every_field_has_a_spec_with_help_in_both_languages():
    specs = GenerationParams.specs()
    assert list(specs) == [f for f in GenerationParams.__dataclass_fields__]
    assert all(s.ko and s.en and s.ko != s.en for s in specs.values())
    assert GenerationParams.spec("temperature").rule() == "0 or 0.01–5"
    with pytest.raises(InvalidParameterError, match="temprature.*valid"):
        GenerationParams.spec("temprature")
