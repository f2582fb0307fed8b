"""The real client libraries, unchanged but for base_url, streaming from a live server.

The official ``openai`` client, LangChain's ``ChatOpenAI`` and LlamaIndex's ``OpenAILike``
talk to uvicorn on 127.0.0.1 (the test network guard blocks everything else).
"""
from __future__ import annotations

import pytest

from .conftest import live_server, make_app

KO = "서울은 대한민국의 수도입니다."
KEY = "sk-test-key-123456"


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    app = make_app(replies=[KO], api_keys=[KEY], home=tmp_path_factory.mktemp("clients-home"))
    with live_server(app) as url:
        yield url


def test_openai_client(server_url):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server_url + "/v1", api_key=KEY, max_retries=0)
    out = client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "수도는?"}])
    assert out.choices[0].message.content == KO and out.usage.total_tokens > 0
    stream = client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "수도는?"}],
                                            stream=True, stream_options={"include_usage": True})
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        if chunk.usage:
            usage = chunk.usage
    assert "".join(pieces) == KO and usage.completion_tokens > 0
    text = client.completions.create(model="fake", prompt="서울은", max_tokens=64)
    assert text.choices[0].text == KO
    emb = client.embeddings.create(model="hash", input=["서울", "부산"])  # the client asks for base64
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 64
    models = [m.id for m in client.models.list()]
    assert "fake" in models
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server_url + "/v1", api_key="wrong-key-000", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-small", input="x")


def test_langchain_chat_openai(server_url):
    lc = pytest.importorskip("langchain_openai")
    llm = lc.ChatOpenAI(model="fake", base_url=server_url + "/v1", api_key=KEY, max_retries=0, temperature=0.2)
    assert llm.invoke("수도는?").content == KO
    chunks = list(llm.stream("수도는?"))
    assert "".join(c.content for c in chunks) == KO and len(chunks) > 3


def test_llamaindex_openai_like(server_url):
    mod = pytest.importorskip("llama_index.llms.openai_like")
    from llama_index.core.llms import ChatMessage

    llm = mod.OpenAILike(model="fake", api_base=server_url + "/v1", api_key=KEY, is_chat_model=True,
                         context_window=2048, max_retries=0)
    resp = llm.chat([ChatMessage(role="user", content="수도는?")])
    assert resp.message.content == KO
    deltas = [r.delta for r in llm.stream_chat([ChatMessage(role="user", content="수도는?")])]
    assert "".join(d or "" for d in deltas) == KO
    completion = "".join(r.delta or "" for r in llm.stream_complete("서울은"))
    assert completion == KO
