"""Word (.docx) loader (python-docx): paragraphs and tables, headings as sections."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...errors import InputFileError, MissingDependencyError
from ..types import Document
from . import file_doc_id, require_text


def _heading_level(style_name: str) -> int | None:
    name = (style_name or "").lower()
    for prefix in ("heading", "제목"):
        if name.startswith(prefix):
            rest = name[len(prefix):].strip()
            return int(rest) if rest.isdigit() else 1
    return 1 if name == "title" else None


def load_docx(path: Path) -> Iterator[Document]:
    try:
        import docx
    except ImportError:
        raise MissingDependencyError("python-docx", purpose="reading .docx files") from None
    try:
        d = docx.Document(str(path))
    except Exception as e:  # noqa: BLE001 - a corrupt zip/XML may raise anything
        raise InputFileError(path, f"corrupt or unreadable .docx ({type(e).__name__}: {e})"[:300]) from None
    parts: list[str] = []
    sections: list[tuple[int, str]] = []
    stack: list[tuple[int, str]] = []
    offset = 0
    for p in d.paragraphs:
        text = p.text.strip()
        if not text:
            continue
        level = _heading_level(p.style.name if p.style is not None else "")
        if level is not None:
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            sections.append((offset, " > ".join(n for _, n in stack)))
        parts.append(text)
        offset += len(text) + 2
    for table in d.tables:
        for row in table.rows:
            line = " | ".join(c.text.strip() for c in row.cells)
            if line.strip(" |"):
                parts.append(line)
    text = "\n\n".join(parts)
    require_text(path, text)
    title = (d.core_properties.title or "").strip() or (sections[0][1] if sections else "") or path.stem
    yield Document(id=file_doc_id(path), source=file_doc_id(path), text=text, title=title, sections=sections,
                   meta={"format": "docx"})
