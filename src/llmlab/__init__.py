"""llmlab — LLM 실습실: an offline-first, Korean-first LLM lab.

The public Python API. Importing this package stays light: no torch, transformers,
llama_cpp or web framework is imported until a model or server is actually used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["load_model", "GenerationParams", "Message", "Completion", "LLMLabError", "__version__"]

from .errors import LLMLabError
from .types import Completion, GenerationParams, Message

if TYPE_CHECKING:  # pragma: no cover
    from .models.model import Model


def load_model(name: str | None = None, **kwargs: Any) -> "Model":
    """Load a model; see :func:`llmlab.models.model.load_model`."""
    from .models.model import load_model as _load

    return _load(name, **kwargs)
