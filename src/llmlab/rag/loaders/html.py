"""HTML loader on the standard library's parser: visible text, ``<title>``, h1–h6 sections.

Scripts, styles and navigation are dropped; block elements become line breaks so the
sentence splitter sees paragraph boundaries.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

from ..types import Document
from . import file_doc_id, require_text
from .text import read_text

_SKIP = {"script", "style", "noscript", "template", "nav", "svg", "head"}
_BLOCK = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer", "blockquote",
          "pre", "h1", "h2", "h3", "h4", "h5", "h6", "dd", "dt", "hr", "main", "aside", "figure", "figcaption"}
_HEADINGS = {f"h{i}": i for i in range(1, 7)}


class _Extractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.skip = 0
        self.title = ""
        self.in_title = False
        self.heading: tuple[int, int, list[str]] | None = None  # level, start offset, text
        self.sections: list[tuple[int, str]] = []
        self.stack: list[tuple[int, str]] = []

    def _add(self, s: str) -> None:
        self.parts.append(s)
        self.size += len(s)

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self._add("\n")
        if tag in _HEADINGS and not self.skip:
            self.heading = (_HEADINGS[tag], self.size, [])

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self._add("\n")
        if tag in _HEADINGS and self.heading is not None:
            level, start, words = self.heading
            name = re.sub(r"\s+", " ", "".join(words)).strip()
            if name:
                while self.stack and self.stack[-1][0] >= level:
                    self.stack.pop()
                self.stack.append((level, name))
                self.sections.append((start, " > ".join(n for _, n in self.stack)))
            self.heading = None

    def handle_data(self, data):
        if self.in_title:
            self.title += data
        if self.skip:
            return
        data = re.sub(r"[ \t\r\n]+", " ", data)
        if data.strip():
            self._add(data)
            if self.heading is not None:
                self.heading[2].append(data)


def load_html(path: Path) -> Iterator[Document]:
    raw, encoding = read_text(path)
    p = _Extractor()
    p.feed(raw)
    p.close()
    text = "".join(p.parts)
    cleaned, offsets = _collapse_newlines(text)
    lead = len(cleaned) - len(cleaned.lstrip("\n"))
    cleaned = cleaned.strip("\n")
    sections = [(max(0, offsets[min(o, len(offsets) - 1)] - lead), name) for o, name in p.sections]
    require_text(path, cleaned)
    title = re.sub(r"\s+", " ", p.title).strip() or (sections[0][1] if sections else "") or path.stem
    yield Document(id=file_doc_id(path), source=file_doc_id(path), text=cleaned, title=title,
                   sections=sections, meta={"format": "html", "encoding": encoding})


def _collapse_newlines(text: str) -> tuple[str, list[int]]:
    """Squeeze 3+ newlines (and line-edge spaces) into a blank line; return the old->new offset map."""
    out: list[str] = []
    offsets: list[int] = []
    newlines = 0
    for ch in text:
        offsets.append(len(out))
        if ch == "\n":
            while out and out[-1] == " ":
                out.pop()
            newlines += 1
            if newlines <= 2:
                out.append(ch)
        elif ch == " " and (not out or out[-1] == "\n"):
            continue
        else:
            newlines = 0
            out.append(ch)
    offsets.append(len(out))
    return "".join(out), offsets
