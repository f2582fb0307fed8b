"""Every shipped backend passes :class:`llmlab.testing.backend_contract.BackendContract`.

The fake always; the OpenAI-compatible backend against the local HTTP stub (with and
without ``extra_params``); llama.cpp with the bundled GGUF and transformers with the same
GGUF dequantized (both ``slow``).
"""
from __future__ import annotations

import pytest

from llmlab.config import Settings
from llmlab.models.base import BACKENDS
from llmlab.models.capabilities import Capabilities
from llmlab.models.model import load_model
from llmlab.models.openai_compat import OpenAICompatBackend
from llmlab.models.spec import ModelSpec
from llmlab.testing.backend_contract import BackendContract
from llmlab.testing.fakes import FakeBackend
from tests.models.test_openai_compat import FAKE_KEY, _isolated_env, stub  # noqa: F401  (fixtures)


class TestFakeContract(BackendContract):
    @pytest.fixture
    def backend(self):
        be = FakeBackend(context_length=256)
        yield be
        be.close()

    @pytest.fixture
    def fresh_backend(self):
        return FakeBackend()


def _openai(stub, **options) -> OpenAICompatBackend:  # noqa: F811
    spec = ModelSpec(name="openai:test-model", backend="openai", remote_model="test-model")
    return OpenAICompatBackend.load(spec, Settings(), base_url=stub.url, api_key=FAKE_KEY, **options)


class TestOpenAIContract(BackendContract):
    @pytest.fixture
    def backend(self, stub):  # noqa: F811
        be = _openai(stub)
        yield be
        be.close()

    @pytest.fixture
    def fresh_backend(self, stub):  # noqa: F811
        be = _openai(stub)
        list(be.stream_chat([{"role": "user", "content": "hi"}], self.params()))  # opens its HTTP client
        return be


class TestOpenAIExtraParamsContract(TestOpenAIContract):
    """A server that accepts top_k and repetition_penalty (vLLM): the instance declares them."""

    @pytest.fixture
    def backend(self, stub):  # noqa: F811
        be = _openai(stub, extra_params=True)
        yield be
        be.close()

    def test_extra_params_reach_the_server(self, backend, stub):  # noqa: F811
        assert backend.capabilities.top_k and backend.capabilities.repetition_penalty
        list(backend.stream(PROMPT_, self.params(top_k=5, repetition_penalty=1.3)))
        assert stub.last["top_k"] == 5 and stub.last["repetition_penalty"] == 1.3


PROMPT_ = "Hello"


def test_every_builtin_kind_declares_capabilities_without_loading():
    for name in ("llamacpp", "transformers", "openai", "fake"):
        entry = BACKENDS.get(name)
        assert isinstance(entry.capabilities, Capabilities) and entry.options
    assert BACKENDS.get("llamacpp").capabilities.json_schema
    assert BACKENDS.get("openai").capabilities.remote and not BACKENDS.get("fake").capabilities.remote


def test_declared_options_are_what_each_backend_accepts():
    from llmlab.models import openai_compat
    from llmlab.models.llamacpp import LlamaCppBackend

    assert BACKENDS.get("llamacpp").options == LlamaCppBackend.OPTIONS
    assert BACKENDS.get("openai").options == set(openai_compat.OPTIONS)
    # the fake names its valid options in its error
    with pytest.raises(Exception, match="valid") as e:
        FakeBackend.load(ModelSpec(name="x", backend="fake"), Settings(), nope=1)
    assert all(o in str(e.value) for o in BACKENDS.get("fake").options)


# -- real models (slow) --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smol_llamacpp():
    m = load_model("smollm2-135m", threads=1, ledger=False)
    yield m.backend
    m.close()


@pytest.mark.slow
class TestLlamaCppContract(BackendContract):
    @pytest.fixture
    def backend(self, smol_llamacpp):
        return smol_llamacpp

    @pytest.fixture
    def fresh_backend(self):
        return load_model("smollm2-135m", threads=1, ledger=False, n_ctx=256).backend


@pytest.fixture(scope="module")
def smol_transformers():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    m = load_model("smollm2-135m", backend="transformers", threads=1, ledger=False)
    yield m.backend
    m.close()


@pytest.mark.slow
class TestTransformersContract(BackendContract):
    max_new = 4

    @pytest.fixture
    def backend(self, smol_transformers):
        return smol_transformers

    @pytest.fixture
    def fresh_backend(self, smol_transformers):
        # loading the dequantized GGUF again costs seconds: close a copy that shares the weights
        import copy

        return copy.copy(smol_transformers)
