"""Korean BM25 as sparse vectors: Kiwi content morphemes, TF saturation at ingest, IDF in the store.

Korean words are stems plus particles and endings (``근로자에게`` = ``근로자`` + ``에게``), so
whitespace BM25 misses most matches; Kiwi (kiwipiepy) splits them and we keep only content
morphemes. Tokenizing is the slow part, so tokens are computed once at ingest and stored.
A chunk's sparse vector holds BM25's saturated term frequency; the store multiplies in
the IDF at query time (Qdrant's IDF modifier), so scores stay right as the collection
grows. Terms map to sparse indices by CRC32 — stable across processes and stores.
"""
from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..registry import Registry
from ..text.kiwi import kiwi
from .types import SparseVector

#: content morphemes kept as BM25 terms: nouns, numerals, foreign/Chinese words, roots,
#: verb/adjective stems and general adverbs. Pronouns (NP: 무엇, 누구, 어디) and bound
#: nouns (NNB: 것, 수, 년) are left out — dropping them measured better on ko_rag.
CONTENT_TAGS = frozenset({"NNG", "NNP", "NR", "SL", "SN", "SH", "XR", "VV", "VA", "MAG"})
#: a question's key terms (for refusing): general and proper nouns, foreign and Chinese words
KEY_TAGS = frozenset({"NNG", "NNP", "SL", "SH"})


@dataclass(frozen=True)
class BM25Params:
    k1: float = 1.2
    b: float = 0.75
    avg_len: float = 64.0  # average chunk length in terms; fixed per collection at creation


class KiwiTokenizer:
    """Text → BM25 terms (Kiwi content morphemes; Latin letters lower-cased)."""

    name = "kiwi"

    def __init__(self, tags: Iterable[str] = CONTENT_TAGS):
        self.tags = frozenset(tags)
        self._keep: dict[str, bool] = {}  # Kiwi tag (e.g. "VV-R") -> kept; a handful of distinct tags

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        keep = self._keep
        out = []
        for tokens in kiwi("Korean BM25 (morpheme analysis)").tokenize(list(texts)):
            row = []
            for t in tokens:
                tag = t.tag
                kept = keep.get(tag)
                if kept is None:
                    kept = keep[tag] = tag.split("-")[0] in self.tags
                if kept:
                    row.append(t.form.lower() if tag == "SL" else t.form)
            out.append(row)
        return out

    def __call__(self, text: str) -> list[str]:
        return self.tokenize([text])[0]

    def key_terms(self, text: str) -> list[str]:
        """The nouns and foreign words of ``text`` (what a question is about; verbs get paraphrased)."""
        return KiwiTokenizer(KEY_TAGS)(text)


class SimpleTokenizer:
    """Lower-cased ``\\w+`` words: language-agnostic and instant (tests, non-Korean corpora)."""

    name = "simple"
    _WORD = re.compile(r"\w+")

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        return [self._WORD.findall(t.lower()) for t in texts]

    def __call__(self, text: str) -> list[str]:
        return self.tokenize([text])[0]

    def key_terms(self, text: str) -> list[str]:
        return self(text)


#: lexical tokenizer name -> class; a collection records which one it was built with
TOKENIZERS: Registry[type] = Registry("lexical tokenizer")
TOKENIZERS.register("kiwi", KiwiTokenizer)
TOKENIZERS.register("simple", SimpleTokenizer)


def term_index(term: str) -> int:
    return zlib.crc32(term.encode("utf-8"))


def _merge(weights: dict[int, float]) -> SparseVector:
    idx = sorted(weights)
    return SparseVector(indices=idx, values=[float(weights[i]) for i in idx])


def document_vector(tokens: Sequence[str], params: BM25Params = BM25Params()) -> SparseVector:
    """BM25's saturated term frequency per term; the store applies IDF at query time."""
    norm = params.k1 * (1 - params.b + params.b * len(tokens) / params.avg_len)
    weights: dict[int, float] = {}
    for term, tf in Counter(tokens).items():
        i = term_index(term)
        weights[i] = weights.get(i, 0.0) + tf * (params.k1 + 1) / (tf + norm)
    return _merge(weights)


def query_vector(tokens: Sequence[str]) -> SparseVector:
    """Each distinct query term once (weight 1), as BM25 scores a query."""
    return _merge({term_index(t): 1.0 for t in set(tokens)})
