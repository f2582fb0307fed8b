"""Document loaders: one per file type, registered by suffix in :data:`LOADERS`.

A loader turns one file into :class:`~llmlab.rag.types.Document` objects (a ``.jsonl``
file holds many). :func:`load_paths` walks files and folders; a file that is unknown,
empty, corrupt or undecodable becomes a :class:`~llmlab.rag.types.Skipped` entry naming
it, and loading goes on with the rest.
"""
from __future__ import annotations

import errno
import logging
import os
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


def _link_problem(path: Path) -> str | None:
    """Why a symbolic link cannot be read (a loop, a missing target), or None when it can."""
    try:
        path.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop"
        if e.errno == errno.ENOENT:
            return f"broken symbolic link (its target {os.readlink(path)!r} does not exist)"
        return f"unreadable symbolic link: {e.strerror}"
    return None


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path | Skipped]:
    """Files under ``paths`` (folders recursively, sorted, hidden entries skipped).

    Symbolic links inside folders are followed to files; links to folders are not walked
    (no cycles); broken links and link loops become :class:`Skipped` entries.
    """
    for p in paths:
        path = Path(p).expanduser()
        if path.is_symlink() and (problem := _link_problem(path)):
            yield Skipped(str(path), problem)
        elif path.is_dir():
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if f.is_symlink():
                    problem = _link_problem(f)
                    if problem:
                        yield Skipped(str(f), problem)
                    elif f.is_dir():
                        yield Skipped(str(f), "symbolic link to a folder (not followed; give the folder itself)")
                    elif f.is_file():
                        yield f
                elif f.is_file():
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
