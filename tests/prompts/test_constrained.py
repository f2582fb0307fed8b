"""Constrained decoding (llmlab.models.constrained): the choice constraint in the decode loop,
and llama.cpp's grammar sampler making the bundled model's output conform to a schema."""
import json

import numpy as np
import pytest

from llmlab.errors import UnsupportedParameterError
from llmlab.models.constrained import ChoiceConstraint, grammar_capable, schema_constraint
from llmlab.models.decoding import RequestState
from llmlab.prompts.structured import parse_structured
from llmlab.types import GenerationParams

EOS = 256


class ByteVocab:
    """Byte tokens + EOS; the "model" strongly prefers 'z', so unconstrained output is 'zzz…'."""

    def is_eog(self, t):
        return t == EOS

    def token_bytes(self, t):
        return bytes([t]) if t < 256 else b""

    @staticmethod
    def logits():
        lg = np.linspace(-1, 1, 257).astype(np.float32)
        lg[ord("z")] = 10.0
        return lg


def run(constraint=None, **params):
    v = ByteVocab()
    p = GenerationParams(**{"max_new_tokens": 20, **params})
    st = RequestState([1, 2, 3], p, n_ctx=512, is_eog=v.is_eog, token_bytes=v.token_bytes, piece=str,
                      constraint=constraint)
    logits = [v.logits() for _ in st.active]
    while not st.done:
        _, pending = st.step(logits)
        logits = [v.logits() for _ in pending]
    return st.result()


def test_unconstrained_baseline():
    assert run(temperature=0)[0].text == "z" * 20


def test_choice_constraint_forces_one_of_the_choices_then_stops():
    v = ByteVocab()
    seqs = run(ChoiceConstraint(["yes", "no", "긍정"], v.token_bytes, v.is_eog), temperature=1.0, seed=3,
               num_return_sequences=4)
    assert all(s.text in ("yes", "no", "긍정") and s.finish_reason == "stop" for s in seqs)


def test_enum_schema_without_a_llama_vocabulary_uses_choices():
    v = ByteVocab()
    assert not grammar_capable(v)
    text = run(schema_constraint(v, {"enum": ["positive", "negative"]}), temperature=0)[0].text
    assert json.loads(text) in ("positive", "negative")
    with pytest.raises(UnsupportedParameterError, match="llama.cpp"):
        schema_constraint(v, {"type": "object"})


def test_each_sequence_keeps_its_own_state():
    c = ChoiceConstraint(["ab", "ba"], ByteVocab().token_bytes, ByteVocab().is_eog)
    a, b = c.clone(), c.clone()
    a.mask(np.zeros(257, dtype=np.float32))
    a.accept(ord("a"))
    b.mask(np.zeros(257, dtype=np.float32))
    b.accept(ord("b"))
    assert a.allowed() == [ord("b")] and b.allowed() == [ord("a")]


# -- the bundled model ----------------------------------------------------------------------
TEXT = "Anna is a 28-year-old designer who lives in Berlin."


@pytest.fixture(scope="module")
def bundled():
    from llmlab.models.model import load_model

    m = load_model("smollm2-135m", threads=1, ledger=False)
    yield m
    m.close()


@pytest.mark.slow
@pytest.mark.parametrize("sampling", [dict(temperature=0), dict(temperature=1.0, seed=7, num_return_sequences=3)])
def test_structured_output_conforms_to_its_schema_on_the_bundled_model(bundled, sampling):
    from llmlab.prompts import load_template, run_template

    tpl = load_template("json_output")
    res = run_template(bundled, tpl, {"text": TEXT}, **sampling)
    assert res.structured.constrained
    for text in res.completion.texts:
        out = parse_structured(text, tpl.schema)
        assert out.valid, (text, out.errors)
    assert {s.finish_reason for s in res.completion.sequences} == {"stop"}  # ended when the JSON closed
    if not sampling.get("temperature"):
        assert res.structured.data == {"name": "Anna", "age": 28, "city": "Berlin"}


@pytest.mark.slow
def test_without_the_grammar_the_small_model_does_not_conform(bundled):
    """Why the constraint matters: the same prompt, unconstrained, echoes the schema back."""
    from llmlab.prompts import load_template

    tpl = load_template("json_output")
    c = bundled.chat(tpl.messages({"text": TEXT}), temperature=0, max_new_tokens=48)
    assert not parse_structured(c.text, tpl.schema).valid


@pytest.mark.slow
def test_classify_is_constrained_to_the_labels(bundled):
    from llmlab.tasks import classify

    r = classify(bundled, "The striker scored twice in the final minutes.", "economy,sports,politics")
    assert r.info["constrained"] and r.data["valid"] and r.data["label"] in ("economy", "sports", "politics")
    assert json.loads(r.info["raw"]) == r.data["label"]
