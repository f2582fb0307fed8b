"""Plain text and Markdown loaders, with encoding detection (CP949 included).

Plain text pages split on form feeds (what ``pdftotext`` writes); Markdown keeps its front
matter title and heading paths; both recognise Korean statute chapter/article headings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...errors import InputFileError
from ..types import Document
from . import file_doc_id, require_text
from ...text import UndecodableError, decode_text
from .structure import (first_line_title, markdown_sections, split_front_matter, statute_sections,
                        title_from_fields)


def read_text(path: Path) -> tuple[str, str]:
    try:
        text, encoding = decode_text(path.read_bytes())
    except UndecodableError as e:
        raise InputFileError(path, str(e)) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    require_text(path, text)
    return text, encoding


def load_text(path: Path) -> Iterator[Document]:
    text, encoding = read_text(path)
    pages: list[tuple[int, int]] = []
    if "\f" in text:
        offset = 0
        for n, page in enumerate(text.split("\f"), start=1):
            pages.append((offset, n))
            offset += len(page) + 1
        text = text.replace("\f", "\n")  # same length: offsets stay valid
    yield Document(id=file_doc_id(path), source=file_doc_id(path), text=text, title=first_line_title(text) or path.stem,
                   pages=pages, sections=statute_sections(text), meta={"encoding": encoding, "format": "txt"})


def load_markdown(path: Path) -> Iterator[Document]:
    raw, encoding = read_text(path)
    text, fields, _ = split_front_matter(raw)
    require_text(path, text)
    title = title_from_fields(fields) or first_line_title(text) or path.stem
    sections = markdown_sections(text, title) or statute_sections(text)
    yield Document(id=file_doc_id(path), source=file_doc_id(path), text=text, title=title, sections=sections,
                   meta={"encoding": encoding, "format": "md"})
