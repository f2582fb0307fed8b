"""Any sentence-transformers model by name or local path (``st:NAME_OR_PATH``).

e5-family models get their ``query: ``/``passage: `` roles automatically; others can be
given prefixes. Loading by name needs the model in the Hugging Face cache (or network).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...errors import InvalidParameterError, MissingDependencyError
from ...threads import in_fresh_thread
from . import normalize


class SentenceTransformerEmbedder:
    def __init__(self, model: str | None = None, *, device: str | None = None, query_prefix: str | None = None,
                 passage_prefix: str | None = None, batch_size: int = 32):
        if not model:
            raise InvalidParameterError("name the sentence-transformers model: --embedder st:NAME_OR_PATH")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise MissingDependencyError("sentence-transformers", purpose=f"the embedder st:{model}") from None
        self._model = SentenceTransformer(model, device=device)
        is_e5 = "e5" in model.lower()
        self.query_prefix = query_prefix if query_prefix is not None else ("query: " if is_e5 else "")
        self.passage_prefix = passage_prefix if passage_prefix is not None else ("passage: " if is_e5 else "")
        self.name = f"st:{model}"
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.max_tokens = int(getattr(self._model, "max_seq_length", None) or 512)
        self.batch_size = batch_size

    def _encode(self, texts: list[str]) -> np.ndarray:
        # torch's OpenMP team must end with the call (llmlab.threads.in_fresh_thread)
        rows = in_fresh_thread(self._model.encode, texts, batch_size=self.batch_size, convert_to_numpy=True,
                               normalize_embeddings=True, show_progress_bar=False)
        return normalize(np.asarray(rows).reshape(len(texts), self.dim))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self.query_prefix + text])[0]

    def count_tokens(self, text: str) -> int:
        tok = getattr(self._model, "tokenizer", None)
        if tok is None:
            return max(1, len(text) // 2)
        return len(tok(text, add_special_tokens=False)["input_ids"])
