"""Text hygiene at the boundary: text that cannot be encoded as UTF-8 is refused where it enters.

JSON lets a client (or a JSONL file) spell a lone surrogate (``"\\ud800"``); Python decodes it
into a ``str`` that no tokenizer, database or socket can encode, and it would fail deep inside
a backend as a ``UnicodeEncodeError``. Every door checks once with :func:`check_text` — the
server on each JSON body, the file readers on each JSON line — and answers with an error that
names the field (or file and line), never a crash.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import InputFileError, InvalidParameterError


class UnencodableTextError(InvalidParameterError):
    """Text holds code points UTF-8 cannot encode (lone surrogates)."""

    code = "invalid_text"


def first_unencodable(value: Any, path: str = "") -> tuple[str, int] | None:
    """``(where, index)`` of the first code point in ``value`` (str, or lists/dicts of them, keys
    included) that UTF-8 cannot encode; None when all of it is clean."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as e:
                return where, e.start
        elif isinstance(v, dict):
            for k, item in reversed(list(v.items())):
                sub = f"{where}.{k}" if where else str(k)
                stack.append((sub, item))
                stack.append((sub, k))
        elif isinstance(v, (list, tuple)):
            for i, item in reversed(list(enumerate(v))):
                stack.append((f"{where}.{i}" if where else str(i), item))
    return None


def printable(text: str) -> str:
    """``text`` with unencodable code points spelled as escapes (safe to echo in an error)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def describe(where: str, index: int) -> str:
    field = f"{printable(where)}: " if where else ""
    return (f"{field}the text holds a code point that is not valid Unicode text (a lone surrogate, at character "
            f"{index + 1}); send UTF-8 text")


def check_text(value: Any, where: str = "") -> None:
    """Raise :class:`UnencodableTextError` (with ``param`` set to the field) if ``value`` has unencodable text."""
    bad = first_unencodable(value, where)
    if bad is not None:
        err = UnencodableTextError(describe(*bad))
        err.param = printable(bad[0]) or None  # type: ignore[attr-defined]
        raise err


def unencodable_problem(value: Any) -> str | None:
    """A one-line description of ``value``'s first unencodable text, or None (for file readers)."""
    bad = first_unencodable(value)
    return None if bad is None else describe(*bad)


def load_json_line(line: str, source: str | Path, lineno: int) -> Any:
    """``json.loads(line)`` for a line of a file; bad JSON or unencodable text raise InputFileError at that line."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputFileError(source, f"invalid JSON: {e.msg} (column {e.colno})", line=lineno) from None
    problem = unencodable_problem(value)
    if problem:
        raise InputFileError(source, problem, line=lineno)
    return value
