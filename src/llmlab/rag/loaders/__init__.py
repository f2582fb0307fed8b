"""Document loaders: one per file type, registered by suffix in :data:`LOADERS`.

A loader turns one file into :class:`~llmlab.rag.types.Document` objects (a ``.jsonl``
file holds many). :func:`load_paths` walks files and folders; a file that is unknown,
empty, corrupt or undecodable becomes a :class:`~llmlab.rag.types.Skipped` entry naming
it, and loading goes on with the rest.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ...errors import InputFileError
from ...registry import Registry, lazy
from ..types import Document, Skipped

log = logging.getLogger(__name__)

Loader = Callable[[Path], Iterator["Document | Skipped"]]

#: file suffix (lower case, with the dot) -> loader
LOADERS: Registry[Loader] = Registry("document loader", group="llmlab.loaders")  # plugins: entry points
LOADERS.register(".txt", lazy("llmlab.rag.loaders.text", "load_text"))
LOADERS.register(".md", lazy("llmlab.rag.loaders.text", "load_markdown"))
LOADERS.register(".markdown", lazy("llmlab.rag.loaders.text", "load_markdown"))
LOADERS.register(".pdf", lazy("llmlab.rag.loaders.pdf", "load_pdf"))
LOADERS.register(".docx", lazy("llmlab.rag.loaders.docx", "load_docx"))
LOADERS.register(".html", lazy("llmlab.rag.loaders.html", "load_html"))
LOADERS.register(".htm", lazy("llmlab.rag.loaders.html", "load_html"))
LOADERS.register(".jsonl", lazy("llmlab.rag.loaders.jsonl", "load_jsonl"))


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path | Skipped]:
    """Files under ``paths`` (folders recursively, sorted, hidden entries skipped)."""
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path)
                if f.is_file() and not any(part.startswith(".") for part in rel.parts):
                    yield f
        elif path.is_file():
            yield path
        else:
            yield Skipped(str(path), "no such file or folder")


def load_file(path: Path) -> Iterator[Document | Skipped]:
    """Documents of one file; problems become :class:`Skipped` entries, never exceptions."""
    suffix = path.suffix.lower()
    if suffix not in LOADERS:
        yield Skipped(str(path), f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(LOADERS.names())}")
        return
    try:
        if path.stat().st_size == 0:
            yield Skipped(str(path), "empty file")
            return
        yield from LOADERS.get(suffix)(path)
    except InputFileError as e:
        yield Skipped(str(path), e.problem)
    except Exception as e:  # noqa: BLE001 - a corrupt file may make any parser raise anything; skip it, go on
        log.debug("loading %s failed", path, exc_info=True)
        yield Skipped(str(path), f"cannot read it: {type(e).__name__}: {e}"[:300])


def load_paths(paths: Iterable[str | Path]) -> Iterator[Document | Skipped]:
    """Documents of every file under ``paths``, with :class:`Skipped` entries for bad ones."""
    for f in iter_files(paths):
        if isinstance(f, Skipped):
            yield f
        else:
            yield from load_file(f)


def file_doc_id(path: Path) -> str:
    """A file's document id: its resolved path, so the same file always maps to one id."""
    return str(path.resolve())


def require_text(path: Path, text: str) -> None:
    if not text.strip():
        raise InputFileError(path, "empty file (no text)")
