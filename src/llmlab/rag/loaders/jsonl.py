"""JSON Lines corpora: one ``{"id", "title", "text"}`` record per line, one document each.

This is how evaluation corpora load: ``id`` becomes the document id, so evaluation can
compare retrieved documents with a question's ``context_id``. A bad line is reported
(``file:line``) and skipped; the other records still load.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from ..types import Document, Skipped
from ...textcheck import unencodable_problem
from .text import read_text


def load_jsonl(path: Path) -> Iterator[Document | Skipped]:
    text, _ = read_text(path)
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            yield Skipped(where, f"not valid JSON ({e.msg})")
            continue
        problem = unencodable_problem(rec)
        if problem:
            yield Skipped(where, problem)
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("text"), str) or not rec["text"].strip():
            yield Skipped(where, "a record needs a non-empty 'text' field (and ideally 'id' and 'title')")
            continue
        doc_id = str(rec.get("id") if rec.get("id") is not None else f"{path.resolve()}#{n}")
        if doc_id in seen:
            yield Skipped(where, f"duplicate id {doc_id!r} in this file; the first record was kept")
            continue
        seen.add(doc_id)
        title = str(rec.get("title") or "")
        meta = {k: v for k, v in rec.items() if k not in ("id", "title", "text") and isinstance(v, (str, int, float, bool))}
        yield Document(id=doc_id, source=str(path.resolve()), text=rec["text"], title=title,
                       meta={"format": "jsonl", "line": n, **meta})
