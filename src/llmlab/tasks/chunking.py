"""Splitting text into pieces that fit a token budget: paragraphs, then sentences, then tokens.

Used by the task presets so long Korean or English documents fit the context window.
Sentence ends include Korean endings followed by a period ("…했다.") and CJK full stops.
"""
from __future__ import annotations

import re
from typing import Callable

_SENT_END = re.compile(r"(?<=[.!?。？！])\s+|\n")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT_END.split(text) if s and s.strip()]


def split_to_fit(text: str, budget: int, count: Callable[[str], int]) -> list[str]:
    """Pieces of ``text``, each at most ``budget`` tokens by ``count``, in order.

    Paragraphs are packed together while they fit; a paragraph too long is split into
    sentences, and a sentence too long is cut by characters.
    """
    if budget < 1:
        raise ValueError("budget must be at least one token")
    units: list[str] = []
    for para in re.split(r"\n\s*\n", text.strip()):
        para = para.strip()
        if not para:
            continue
        if count(para) <= budget:
            units.append(para)
            continue
        for sent in split_sentences(para):
            if count(sent) <= budget:
                units.append(sent)
            else:
                units.extend(_cut(sent, budget, count))
    chunks: list[str] = []
    cur = ""
    for u in units:
        cand = f"{cur}\n\n{u}" if cur else u
        if cur and count(cand) > budget:
            chunks.append(cur)
            cur = u
        else:
            cur = cand
    if cur:
        chunks.append(cur)
    return chunks


def _cut(text: str, budget: int, count: Callable[[str], int]) -> list[str]:
    """Cut a long sentence by characters (binary search for the longest fitting prefix)."""
    out = []
    rest = text
    while rest:
        lo, hi = 1, len(rest)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(rest[:mid]) <= budget:
                lo = mid
            else:
                hi = mid - 1
        out.append(rest[:lo].strip())
        rest = rest[lo:]
    return [o for o in out if o]
