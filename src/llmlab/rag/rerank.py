"""The reranker seam: re-order the fused candidates with a slower, sharper judge (off by default).

``cross:NAME_OR_PATH`` scores (question, chunk) pairs with a sentence-transformers
cross-encoder; ``llm:MODEL`` asks a chat model whether the chunk answers the question and
uses the log-probability of "yes". No reranker ships offline, so none is on by default;
``rag eval --rerank SPEC`` measures one when it is configured.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Protocol, Sequence, runtime_checkable

from ..errors import InvalidParameterError, MissingDependencyError
from ..registry import Registry
from ..threads import in_fresh_thread
from .types import Hit


@runtime_checkable
class Reranker(Protocol):
    name: str

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """A relevance score per text (higher is more relevant)."""
        ...


class CrossEncoderReranker:
    def __init__(self, model: str | None = None, *, device: str | None = None, **_options: Any):
        if not model:
            raise InvalidParameterError("name the cross-encoder: --rerank cross:NAME_OR_PATH")
        try:
            from sentence_transformers import CrossEncoder
        except ImportError:
            raise MissingDependencyError("sentence-transformers", purpose=f"the reranker cross:{model}") from None
        self._model = CrossEncoder(model, device=device)
        self.name = f"cross:{model}"

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        # torch's OpenMP team must end with the call (llmlab.threads.in_fresh_thread)
        return [float(s) for s in in_fresh_thread(self._model.predict, [(query, t) for t in texts])]


class LLMReranker:
    """A chat model as judge: score = log P("yes") for "does this passage answer the question?"."""

    PROMPT = ("Passage:\n{text}\n\nQuestion: {query}\n\n"
              "Does the passage contain the answer to the question? Answer yes or no.")

    def __init__(self, model: Any = None, **options: Any):
        from ..models.model import Model, load_model

        self._model = model if isinstance(model, Model) else load_model(model, ledger=False, **options)
        self.name = f"llm:{self._model.name}"

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        # each distinct passage is judged once: equal texts tie exactly (and cost one call)
        judged = {text: self._judge(query, text) for text in dict.fromkeys(texts)}
        return [judged[text] for text in texts]

    def _judge(self, query: str, text: str) -> float:
        c = self._model.chat(self.PROMPT.format(text=text, query=query), max_new_tokens=1, temperature=0.0,
                             logprobs=20)
        first = c.sequences[0].logprobs[0] if c.sequences and c.sequences[0].logprobs else None
        alternatives = ([(first.token, first.logprob)] + list(first.top)) if first else []
        yes = [lp for tok, lp in alternatives if _is_yes(tok)]
        return max(yes) if yes else -math.inf


def _is_yes(token: str) -> bool:
    t = token.strip().lower()
    return bool(t) and ("yes".startswith(t) or t.startswith("yes") or t in ("예", "네"))


RERANKERS: Registry[Any] = Registry("reranker")
RERANKERS.register("cross", CrossEncoderReranker)
RERANKERS.register("llm", LLMReranker)


def load_reranker(spec: str, **options: Any) -> Reranker:
    kind, _, arg = spec.partition(":")
    return RERANKERS.get(kind)(arg or None, **options)


def rerank(reranker: Reranker, query: str, hits: list[Hit]) -> list[Hit]:
    """``hits`` re-ordered by the reranker; the fused score is kept in ``scores['fused']``."""
    if not hits:
        return hits
    new = reranker.scores(query, [h.chunk.text for h in hits])
    out = [replace(h, score=s, scores={**h.scores, "fused": h.score}) for h, s in zip(hits, new)]
    return sorted(out, key=lambda h: -h.score)
