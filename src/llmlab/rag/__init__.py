"""Retrieval-augmented generation: ingest documents, search them, answer with citations, evaluate.

``llmlab.rag.ingest.ingest(paths, collection)`` loads, chunks (Korean-aware), embeds and
stores documents crash-safely; ``search(query, collection)`` runs hybrid retrieval (e5
dense + Kiwi BM25 + sentence-window BM25, score-fused); ``ask(question, collection,
model=…)`` answers with numbered citations; ``llmlab.rag.evaluate.evaluate(questions,
collection)`` measures recall and MRR. (``ingest`` and ``evaluate`` are imported from their
modules: a package attribute cannot be both a submodule and a function.) Heavy parts
(embedder, Kiwi, Qdrant) load only when first used.
"""
from __future__ import annotations

from typing import Any

__all__ = ["remove", "search", "ask", "Collection", "list_collections", "Retriever"]

_EXPORTS = {
    "remove": "llmlab.rag.ingest",
    "search": "llmlab.rag.retrieve",
    "Retriever": "llmlab.rag.retrieve",
    "ask": "llmlab.rag.answer",
    "Collection": "llmlab.rag.collection",
    "list_collections": "llmlab.rag.collection",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'llmlab.rag' has no attribute {name!r}")
