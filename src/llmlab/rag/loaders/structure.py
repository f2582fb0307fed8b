"""Find titles and section headings in loaded text (Markdown headings, Korean statutes).

Sections become ``(char_offset, name)`` marks on a :class:`~llmlab.rag.types.Document`, so
every chunk can say which heading — e.g. ``제60조(연차 유급휴가)`` — it sits under.
"""
from __future__ import annotations

import re

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.S)
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
# Korean statutes: "제1장 총칙", "제60조(연차 유급휴가)", "제3조의2 (정의)" at the start of a line
_KO_CHAPTER = re.compile(r"^(제\s?\d+\s?[편장절](?:의\s?\d+)?)[ \t]+([^\n<]{1,40})", re.M)
_KO_ARTICLE = re.compile(r"^(제\s?\d+\s?조(?:의\s?\d+)?)[ \t]?(\([^)\n]{1,60}\))", re.M)


def split_front_matter(text: str) -> tuple[str, dict[str, str], int]:
    """Strip a YAML front matter block; return ``(rest, fields, offset_of_rest)``."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return text, {}, 0
    fields: dict[str, str] = {}
    for line in m.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith((" ", "-")):
            fields[key.strip()] = value.strip().strip("'\"")
    return text[m.end():], fields, m.end()


def title_from_fields(fields: dict[str, str]) -> str:
    for key in ("title", "Title", "제목"):
        if fields.get(key):
            return fields[key]
    return ""


def markdown_sections(text: str, title: str = "") -> list[tuple[int, str]]:
    """Heading paths (``"제1장 총칙 > 제1조 (목적)"``) at the offset of each heading."""
    marks: list[tuple[int, str]] = []
    stack: list[tuple[int, str]] = []
    for m in _MD_HEADING.finditer(text):
        level, name = len(m.group(1)), m.group(2).strip()
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, name))
        parts = [n for lvl, n in stack if not (lvl == 1 and n == title)]
        marks.append((m.start(), " > ".join(parts) if parts else name))
    return marks


def statute_sections(text: str) -> list[tuple[int, str]]:
    """Chapter and article headings of Korean statutes in plain (e.g. PDF-extracted) text."""
    found = [(m.start(), "chapter", f"{m.group(1)} {m.group(2).strip()}") for m in _KO_CHAPTER.finditer(text)]
    found += [(m.start(), "article", m.group(1) + m.group(2)) for m in _KO_ARTICLE.finditer(text)]
    found.sort()
    marks: list[tuple[int, str]] = []
    chapter = None
    for off, kind, name in found:
        if kind == "chapter":
            chapter = name
            marks.append((off, name))
        else:
            marks.append((off, f"{chapter} > {name}" if chapter else name))
    return marks


def first_line_title(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:120]
    return ""
