"""Reading evaluation data: JSONL files checked line by line.

A malformed line or a missing/ill-typed field is an :class:`InputFileError` naming the
file, the line and the field — the evaluation never starts on half-read data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputFileError
from ..textcheck import load_json_line

# the formats of the lab's datasets (see docs/prompts.md): required field -> type
FORMATS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "translate": {"ko": str, "en": str},  # ko_en_mt {id, ko, en}
    "summarize": {"document": str, "summary": str},  # ko_summ {id, document, summary}
    "qa": {"question": str, "answers": list, "context_id": str},  # ko_rag questions
    "contexts": {"id": str, "text": str},  # ko_rag corpus
    "classify": {"text": str, "label": str},
}


def read_jsonl(path: str | Path, required: dict[str, type | tuple[type, ...]] | None = None,
               limit: int | None = None) -> list[dict[str, Any]]:
    """Records of a JSONL file (blank lines skipped), each checked for ``required`` fields.

    Records without an ``id`` get ``"line-N"``. ``limit`` keeps the first N records.
    """
    p = Path(path)
    try:
        fh = p.open(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(p, "file not found") from None
    except OSError as e:
        raise InputFileError(p, f"cannot read: {e}") from None
    out: list[dict[str, Any]] = []
    with fh:
        try:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                rec = load_json_line(line, p, n)
                if not isinstance(rec, dict):
                    raise InputFileError(p, f"expected a JSON object, got {type(rec).__name__}", line=n)
                for name, typ in (required or {}).items():
                    if name not in rec:
                        raise InputFileError(p, "missing field", line=n, field=name)
                    if not isinstance(rec[name], typ):
                        want = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
                        raise InputFileError(p, f"expected {want}, got {type(rec[name]).__name__}", line=n, field=name)
                rec.setdefault("id", f"line-{n}")
                out.append(rec)
                if limit is not None and len(out) >= limit:
                    break
        except UnicodeDecodeError as e:
            raise InputFileError(p, f"not UTF-8 text: {e.reason}") from None
    if not out:
        raise InputFileError(p, "no records (the file is empty)")
    return out


def read_text(path: str | Path) -> str:
    """A text file for perplexity; a JSONL file contributes its ``text`` (or ``document``) fields."""
    p = Path(path)
    if p.suffix == ".jsonl":
        recs = read_jsonl(p)
        texts = []
        for i, r in enumerate(recs, 1):
            t = r.get("text", r.get("document"))
            if not isinstance(t, str):
                raise InputFileError(p, "needs a 'text' (or 'document') string for perplexity", line=i, field="text")
            texts.append(t)
        return "\n\n".join(texts)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(p, "file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputFileError(p, f"cannot read as UTF-8 text: {e}") from None
    if not text.strip():
        raise InputFileError(p, "the file is empty")
    return text
