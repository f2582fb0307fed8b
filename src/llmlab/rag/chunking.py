"""Korean-aware chunking: split into sentences, pack them to a token budget with overlap.

Sentences end at terminal punctuation after a word (``했다.``, ``인가?``), never inside
numbers or statute dates (``2012. 2. 1.``), and at paragraph, heading and list-item
boundaries (``①``, ``1.``, ``제60조(…)``). Chunks never cross a section boundary, so a
chunk's section (e.g. one statute article) and page are exact; each chunk keeps its
character offsets into the document.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ..errors import InvalidParameterError
from .types import Chunk, Document

TokenCounter = Callable[[str], int]

_CLOSERS = "\"'”’)\\]」』》〉"
# terminal punctuation after a letter/closer (not a digit), or ?/! anywhere, then space or end
_SENT_END = re.compile(
    rf"(?:(?<=[가-힣A-Za-z{_CLOSERS}%])[.…]+|[?!]+|[。！？])[{_CLOSERS}]*(?=\s|$)(?!\s*(?:라고|라며|라는|하고|하며|고\s))"
)
# a line break is a boundary before headings, list items and statute articles
_LINE_START = re.compile(
    r"\n(?=[ \t]*(?:#{1,6}\s|[-*•·]\s|\d{1,3}[.)]\s|[가-하][.)]\s|[①-⑳]|\*\*[①-⑳]|제\s?\d+\s?[조장절편]))"
)
_PARA = re.compile(r"\n[ \t]*\n")
_SENTENCE_LIKE = re.compile(r"[가-힣A-Za-z][.?!]")


@dataclass(frozen=True)
class ChunkingConfig:
    """Token budget per chunk (in the embedder's tokens) and the overlap between chunks."""

    chunk_tokens: int = 256
    overlap_tokens: int = 48

    def __post_init__(self):
        if self.chunk_tokens < 16:
            raise InvalidParameterError(f"chunk_tokens={self.chunk_tokens}: must be at least 16")
        if not 0 <= self.overlap_tokens < self.chunk_tokens // 2:
            raise InvalidParameterError(
                f"overlap_tokens={self.overlap_tokens}: must be ≥ 0 and below half of chunk_tokens ({self.chunk_tokens})")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text[start:end]``, stripped of surrounding space."""
    end = len(text) if end is None else end
    cuts = {start, end}
    segment = text[start:end]
    for rx in (_PARA, _LINE_START):
        cuts.update(start + m.start() for m in rx.finditer(segment))
    cuts.update(start + m.end() for m in _SENT_END.finditer(segment))
    spans = []
    bounds = sorted(cuts)
    for a, b in zip(bounds, bounds[1:]):
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            spans.append((a, b))
    return spans


def _sections(doc: Document) -> list[tuple[int, str]]:
    """Section marks, where a section holding nothing but its heading joins the next one.

    A chapter heading directly followed by an article heading would otherwise become a
    chunk of its own; instead the next section starts at the chapter heading (its name
    already includes the chapter).
    """
    marks = sorted((o, name) for o, name in doc.sections if 0 <= o < len(doc.text))
    kept: list[tuple[int, str]] = []
    pending: int | None = None
    for i, (o, name) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else len(doc.text)
        body = doc.text[o:end].strip()
        if "\n" not in body and not _SENTENCE_LIKE.search(body) and i + 1 < len(marks):
            pending = o if pending is None else pending
            continue
        kept.append((o if pending is None else pending, name))
        pending = None
    return kept


def _section_ranges(marks: list[tuple[int, str]], size: int) -> list[tuple[int, int]]:
    starts = [0] + [o for o, _ in marks if o > 0]
    return list(zip(starts, starts[1:] + [size]))


def _split_long(text: str, span: tuple[int, int], n_tokens: int, budget: int) -> list[tuple[int, int]]:
    """Cut a sentence longer than the budget at spaces, into pieces of about ``budget`` tokens."""
    a, b = span
    pieces = -(-n_tokens // budget)
    step = max(1, (b - a) // pieces)
    out, pos = [], a
    while pos < b:
        cut = min(b, pos + step)
        if cut < b:
            space = text.rfind(" ", pos + step // 2, cut)
            cut = space if space > pos else cut
        out.append((pos, cut))
        pos = cut
        while pos < b and text[pos].isspace():
            pos += 1
    return out


def pack(counts: list[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Group consecutive items (token ``counts``) into ``[i, j)`` ranges of at most ``budget``.

    An item larger than the budget gets a range of its own. Consecutive ranges share
    trailing items worth up to ``overlap`` tokens.
    """
    ranges: list[tuple[int, int]] = []
    i = 0
    while i < len(counts):
        j, total = i, 0
        while j < len(counts) and (j == i or total + counts[j] <= budget):
            total += counts[j]
            j += 1
        ranges.append((i, j))
        if j >= len(counts):
            break
        k, carried = j, 0
        while k - 1 > i and carried + counts[k - 1] <= overlap:
            k -= 1
            carried += counts[k]
        i = k
    return ranges


def chunk_document(doc: Document, count_tokens: TokenCounter, config: ChunkingConfig = ChunkingConfig()) -> list[Chunk]:
    """Pack ``doc``'s sentences into chunks of at most ``config.chunk_tokens`` tokens.

    Consecutive chunks of a section share up to ``overlap_tokens`` tokens of whole
    sentences, so a fact cut by a chunk border is still whole in one of them. Each chunk
    keeps its sentences as ``(start, end, tokens)`` for sentence-level indexing.
    """
    text, budget = doc.text, config.chunk_tokens
    marks = _sections(doc)
    section_doc = Document(id=doc.id, source=doc.source, text="", sections=marks)
    chunks: list[Chunk] = []
    for sec_start, sec_end in _section_ranges(marks, len(text)):
        sents: list[tuple[int, int, int]] = []
        for span in split_sentences(text, sec_start, sec_end):
            n = count_tokens(text[span[0]:span[1]])
            if n > budget:
                sents += [(a, b, count_tokens(text[a:b])) for a, b in _split_long(text, span, n, budget)]
            else:
                sents.append((span[0], span[1], n))
        for i, j in pack([n for _, _, n in sents], budget, config.overlap_tokens):
            a, b = sents[i][0], sents[j - 1][1]
            chunks.append(Chunk(doc_id=doc.id, index=len(chunks), text=text[a:b], source=doc.source, title=doc.title,
                                section=section_doc.section_at(a), page=doc.page_at(a), char_start=a, char_end=b,
                                sentences=sents[i:j]))
    return chunks


def chunk_windows(chunk: Chunk, config: ChunkingConfig) -> list[tuple[int, int]]:
    """Sentence windows of a chunk, as ``[i, j)`` ranges over ``chunk.sentences``."""
    return pack([n for _, _, n in chunk.sentences], config.chunk_tokens, config.overlap_tokens)
