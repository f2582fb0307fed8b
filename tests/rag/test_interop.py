"""LangChain and LlamaIndex adapters with the real packages, network blocked (conftest)."""
from __future__ import annotations

import pytest

import llmlab
from llmlab.rag.ingest import ingest


@pytest.fixture
def collection(docs_dir, fast_config):
    ingest([docs_dir], "t", **fast_config)
    return "t"


def test_langchain_retriever_embeddings_and_chat(collection):
    pytest.importorskip("langchain_core")
    from langchain_core.messages import HumanMessage, SystemMessage

    from llmlab.rag.interop.langchain import LlmlabChatModel, LlmlabEmbeddings, LlmlabRetriever

    r = LlmlabRetriever(collection=collection, k=2)
    docs = r.invoke("목성에는 대적점이")
    r.close()
    assert docs[0].metadata["doc_id"] == "rec-2" and "목성" in docs[0].page_content
    assert {"source", "page", "section", "score"} <= set(docs[0].metadata)

    e = LlmlabEmbeddings("hash")
    assert len(e.embed_query("질문")) == 64 and len(e.embed_documents(["a", "b"])) == 2

    chat = LlmlabChatModel(llmlab.load_model("x", backend="fake", replies=["목성입니다"], ledger=False))
    msg = chat.invoke([SystemMessage("짧게 답하라"), HumanMessage("가장 큰 행성은?")])
    assert msg.content == "목성입니다" and msg.usage_metadata["output_tokens"] > 0
    assert "".join(c.content for c in chat.stream("다시")) == "목성입니다"


def test_langchain_retriever_in_a_standard_chain_runs_in_worker_threads(collection):
    """LCEL runs a retriever inside a parallel map on a worker thread; closing it afterwards from the
    caller's thread must work (the collection's SQLite manifest is shared across threads)."""
    pytest.importorskip("langchain_core")
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    from llmlab.rag.interop.langchain import LlmlabRetriever

    r = LlmlabRetriever(collection=collection, k=2)
    chain = {"context": r | RunnableLambda(lambda docs: docs[0].metadata["doc_id"]),
             "question": RunnablePassthrough()} | RunnableLambda(lambda x: (x["context"], x["question"]))
    assert chain.invoke("목성에는 대적점이") == ("rec-2", "목성에는 대적점이")
    r.close()


def test_llamaindex_retriever_embedding_and_llm(collection):
    pytest.importorskip("llama_index.core")
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    from llmlab.rag.interop.llamaindex import LlmlabLIEmbedding, LlmlabLIRetriever, LlmlabLLM

    r = LlmlabLIRetriever(collection, k=2)
    nodes = r.retrieve("고양이는 쥐를 잡는")
    r.close()
    assert nodes[0].node.metadata["doc_id"] == "rec-0" and nodes[0].score > 0

    e = LlmlabLIEmbedding("hash")
    assert len(e.get_query_embedding("질문")) == 64 and len(e.get_text_embedding_batch(["a", "b"])) == 2

    llm = LlmlabLLM(llmlab.load_model("x", backend="fake", replies=["고양이"], ledger=False, context_length=2048))
    assert llm.complete("쥐를 잡는 동물?").text == "고양이"
    assert llm.chat([ChatMessage(role=MessageRole.USER, content="쥐?")]).message.content == "고양이"
    assert [c.delta for c in llm.stream_complete("쥐?")][-1] is not None
    assert llm.metadata.context_window == 2048
