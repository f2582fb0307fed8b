"""A deterministic, hash-based fake embedder for fast tests (registered as ``hash``).

Words and character bigrams are hashed into signed buckets, so texts sharing words get
similar vectors — enough for retrieval tests to be meaningful — and the same text always
gets the same vector in any process. No model, no network, microseconds per text.
"""
from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np

_WORD = re.compile(r"\w+")


class HashEmbedder:
    max_tokens = 512

    def __init__(self, dim: str | int | None = None, **_options):
        self.dim = int(dim or 64)
        self.name = "hash" if self.dim == 64 else f"hash:{self.dim}"
        self.calls = 0  # texts embedded, for tests that check nothing is re-embedded

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        grams = [w[i:i + 2] for w in words for i in range(max(1, len(w) - 1))]
        return words + grams

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for f in self._features(text):
            h = hashlib.blake2b(f.encode("utf-8"), digest_size=8).digest()
            v[int.from_bytes(h[:4], "little") % self.dim] += 1.0 if h[4] & 1 else -1.0
        if not v.any():
            v[0] = 1.0
        return v / np.linalg.norm(v)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def count_tokens(self, text: str) -> int:
        """About one token per two characters — like subword tokenizers on Korean."""
        return max(1, (len(text.strip()) + 1) // 2)
