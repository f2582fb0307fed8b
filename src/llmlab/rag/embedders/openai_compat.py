"""Embeddings from an OpenAI-compatible ``/embeddings`` endpoint (``openai:MODEL``).

Base URL and key come from llmlab's settings (``LLMLAB_API_BASE``, ``LLMLAB_API_KEY`` or
``OPENAI_API_KEY``) unless given. Token counts are estimated (the remote tokenizer is
not available offline): about one token per Korean syllable or three Latin letters.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...errors import BackendError, InvalidParameterError
from ...text import estimate_tokens
from . import normalize


class OpenAIEmbedder:
    def __init__(self, model: str | None = None, *, base_url: str | None = None, api_key: str | None = None,
                 dim: int | None = None, max_tokens: int = 8191, batch_size: int = 64, timeout: float = 60.0,
                 transport: Any = None):
        if not model:
            raise InvalidParameterError("name the embedding model: --embedder openai:MODEL")
        import httpx

        from ...config import load_settings

        settings = load_settings()
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = (base_url or settings.api_base).rstrip("/")
        key = api_key or settings.resolved_api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.dim = dim or int(self._post(["dimension probe"]).shape[1])

    def _post(self, texts: list[str]) -> np.ndarray:
        import httpx

        try:
            r = self._client.post("/embeddings", json={"model": self.model, "input": texts})
        except httpx.HTTPError as e:
            raise BackendError(f"embedding request to {self.base_url} failed: {e}") from None
        if r.status_code != 200:
            raise BackendError(f"embedding API at {self.base_url} answered {r.status_code}: {r.text[:300]}")
        data = sorted(r.json()["data"], key=lambda d: d["index"])
        return normalize(np.array([d["embedding"] for d in data], dtype=np.float32))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate([self._post(texts[i:i + self.batch_size]) for i in range(0, len(texts), self.batch_size)])

    def embed_query(self, text: str) -> np.ndarray:
        return self._post([text])[0]

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)  # no tokenizer for a remote model: llmlab's one estimate
