"""Embeddings from an OpenAI-compatible ``/embeddings`` endpoint (``openai:MODEL``).

Base URL and key come from llmlab's settings (``LLMLAB_API_BASE``, ``LLMLAB_API_KEY`` or
``OPENAI_API_KEY``) unless given. The HTTP side is the ``openai`` model backend's: batches,
bounded retries on 429/5xx (honouring Retry-After), timeouts and error messages that never
show the key. Token counts are estimated (the remote tokenizer is not available offline):
about one token per Korean syllable or three Latin letters.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...errors import InvalidParameterError
from ...text import estimate_tokens
from . import normalize


class OpenAIEmbedder:
    def __init__(self, model: str | None = None, *, base_url: str | None = None, api_key: str | None = None,
                 dim: int | None = None, max_tokens: int = 8191, batch_size: int = 64, timeout: float = 60.0,
                 max_retries: int = 3, transport: Any = None):
        if not model:
            raise InvalidParameterError("name the embedding model: --embedder openai:MODEL")
        from ...config import load_settings
        from ...models.openai_compat import OpenAICompatBackend
        from ...models.spec import ModelSpec

        settings = load_settings()
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = (base_url or settings.api_base).rstrip("/")
        key = api_key if api_key is not None else settings.resolved_api_key()
        spec = ModelSpec(name=self.name, backend="openai", remote_model=model, base_url=self.base_url)
        self._api = OpenAICompatBackend(spec, base_url=self.base_url, api_key=key, timeout=timeout,
                                        max_retries=max_retries, transport=transport)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.dim = dim or int(self._post(["dimension probe"]).shape[1])

    def _post(self, texts: list[str]) -> np.ndarray:
        return normalize(np.asarray(self._api.embed(texts, batch_size=self.batch_size), dtype=np.float32))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._post(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._post([text])[0]

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)  # no tokenizer for a remote model: llmlab's one estimate

    def close(self) -> None:
        self._api.close()
