"""Constrained decoding (llmlab.models.constrained): the engine wrapper, the choice constraint,
and llama.cpp's grammar sampler on the bundled model's logits."""
import json

import numpy as np
import pytest

from llmlab.errors import UnsupportedParameterError
from llmlab.models.constrained import ChoiceConstraint, ConstrainedEngine, constrain_engine, schema_constraint
from llmlab.models.decoding import decode
from llmlab.prompts.structured import parse_structured
from llmlab.types import GenerationParams

EOS = 256


class ByteEngine:
    """A byte-level engine whose logits prefer 'z' strongly: unconstrained output is 'zzz…'."""

    n_ctx = 512

    def __init__(self):
        self.fed = []

    def is_eog(self, t):
        return t == EOS

    def token_bytes(self, t):
        return bytes([t]) if t < 256 else b""

    def _logits(self):
        lg = np.linspace(-1, 1, 257).astype(np.float32)
        lg[ord("z")] = 10.0
        return lg

    def eval_prompt(self, ids, n):
        return self._logits()

    def eval_next(self, tokens):
        self.fed += tokens
        return [self._logits() for _ in tokens]


def run(engine, **params):
    p = GenerationParams(**{"max_new_tokens": 20, **params})
    return [ev for ev in decode(engine, [1, 2, 3], p, piece=str) if isinstance(ev, list)][0]


def test_unconstrained_baseline():
    assert run(ByteEngine(), temperature=0)[0].text == "z" * 20


def test_choice_constraint_forces_one_of_the_choices_then_stops():
    eng = ConstrainedEngine(ByteEngine(), ChoiceConstraint(["yes", "no", "긍정"], ByteEngine().token_bytes,
                                                           ByteEngine().is_eog))
    seqs = run(eng, temperature=1.0, seed=3, num_return_sequences=4)
    assert all(s.text in ("yes", "no", "긍정") and s.finish_reason == "stop" for s in seqs)


def test_enum_schema_on_a_non_llama_engine_uses_choices():
    eng = constrain_engine(ByteEngine(), {"enum": ["positive", "negative"]})
    text = run(eng, temperature=0)[0].text
    assert json.loads(text) in ("positive", "negative")
    assert constrain_engine(ByteEngine(), None).__class__ is ByteEngine
    with pytest.raises(UnsupportedParameterError, match="llama.cpp"):
        schema_constraint(ByteEngine(), {"type": "object"})


def test_each_sequence_keeps_its_own_state():
    c = ChoiceConstraint(["ab", "ba"], lambda t: bytes([t]) if t < 256 else b"", lambda t: t == EOS)
    a, b = c.clone(), c.clone()
    a.mask(np.zeros(257, dtype=np.float32))
    a.accept(ord("a"))
    b.mask(np.zeros(257, dtype=np.float32))
    b.accept(ord("b"))
    assert a.allowed() == [ord("b")] and b.allowed() == [ord("a")]


# -- the bundled model ----------------------------------------------------------------------
SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 40},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 150},
                                           "city": {"type": "string", "maxLength": 40}},
          "required": ["name", "age", "city"], "additionalProperties": False}


@pytest.fixture(scope="module")
def bundled():
    from llmlab.models.model import load_model

    m = load_model("smollm2-135m", threads=1, ledger=False)
    yield m
    m.close()


def _prompt_ids(model, text):
    from llmlab.prompts.library import load_template

    be = model.backend
    prompt = be.render_chat(load_template("json_output").messages({"text": text}))
    return be.tokenize(prompt, add_special=False)


@pytest.mark.slow
@pytest.mark.parametrize("sampling", [dict(temperature=0), dict(temperature=1.0, seed=7, num_return_sequences=3)])
def test_grammar_constrained_output_conforms_to_the_schema(bundled, sampling):
    be = bundled.backend
    ids = _prompt_ids(bundled, "Anna is a 28-year-old designer who lives in Berlin.")
    p = GenerationParams(max_new_tokens=64, **sampling)
    with be.engine.lock:
        seqs = [ev for ev in decode(constrain_engine(be.engine, SCHEMA), ids, p, piece=str) if isinstance(ev, list)][0]
    for s in seqs:
        out = parse_structured(s.text, SCHEMA)
        assert out.valid, (s.text, out.errors)
        assert s.finish_reason == "stop"  # the grammar allowed end-of-generation once the object closed
    if not p.sampling:
        assert parse_structured(seqs[0].text, SCHEMA).data == {"name": "Anna", "age": 28, "city": "Berlin"}


@pytest.mark.slow
def test_without_the_grammar_the_small_model_does_not_conform(bundled):
    """Why the constraint matters: greedy decoding alone echoes the schema back."""
    ids = _prompt_ids(bundled, "Anna is a 28-year-old designer who lives in Berlin.")
    with bundled.backend.engine.lock:
        seqs = [ev for ev in decode(bundled.backend.engine, ids, GenerationParams(max_new_tokens=48, temperature=0),
                                    piece=str) if isinstance(ev, list)][0]
    assert not parse_structured(seqs[0].text, SCHEMA).valid


@pytest.mark.slow
def test_structured_output_end_to_end_through_generation_params(bundled):
    """Once the backend honours ``json_schema`` (see the hook in llmlab.models.constrained), a
    template with a schema yields conforming JSON through the public API."""
    from llmlab.prompts import load_template, run_template
    from llmlab.prompts.structured import supports_constraints

    if not supports_constraints(bundled):
        pytest.skip("GenerationParams.json_schema / LlamaCppBackend.supports_json_schema not wired yet")
    res = run_template(bundled, load_template("json_output"),
                       {"text": "김민수 씨는 서른네 살이고 부산에 삽니다. (Kim Minsu, 34, lives in Busan.)"})
    assert res.structured.constrained and res.structured.valid, res.structured.errors
