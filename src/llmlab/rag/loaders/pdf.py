"""PDF loader (pypdf): text page by page, so every chunk knows its page number.

Encrypted PDFs are tried with an empty password; a PDF with no extractable text (a scan)
is reported, since it needs OCR first.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Iterator

from ...errors import InputFileError, MissingDependencyError
from ..types import Document
from . import file_doc_id
from .structure import first_line_title, statute_sections

log = logging.getLogger(__name__)


def running_title(pages: list[str]) -> str:
    """A header line (without digits) repeated on most pages — e.g. the statute name."""
    if len(pages) < 3:
        return ""
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for page in pages:
        lines = [" ".join(line.split()) for line in page.splitlines() if line.strip()]
        for line in set(lines[:3]):
            counts[line] += 1
            first_seen.setdefault(line, len(first_seen))
    repeated = [line for line, n in counts.items() if n >= 0.6 * len(pages) and not re.search(r"\d", line)]
    return min(repeated, key=first_seen.__getitem__)[:120] if repeated else ""


def load_pdf(path: Path) -> Iterator[Document]:
    try:
        import pypdf
    except ImportError:
        raise MissingDependencyError("pypdf", purpose="reading PDF files") from None
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns about every odd object
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputFileError(path, "the PDF is password-protected")
        texts = [(page.extract_text() or "").replace("\r\n", "\n") for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except InputFileError:
        raise
    except Exception as e:  # noqa: BLE001 - pypdf raises many kinds of errors on corrupt files
        raise InputFileError(path, f"corrupt or unreadable PDF ({type(e).__name__}: {e})"[:300]) from None
    if not any(t.strip() for t in texts):
        raise InputFileError(path, "no extractable text (a scanned PDF? run OCR on it first)")
    parts, pages, offset = [], [], 0
    for n, t in enumerate(texts, start=1):
        pages.append((offset, n))
        parts.append(t)
        offset += len(t) + 2
    text = "\n\n".join(parts)
    title = str(meta_title).strip() or running_title(texts) or first_line_title(text) or path.stem
    yield Document(id=file_doc_id(path), source=file_doc_id(path), text=text, title=title, pages=pages,
                   sections=statute_sections(text), meta={"format": "pdf", "pages": len(texts)})
