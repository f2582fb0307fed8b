"""Turning downloaded files into the lab's formats (one converter per source format).

Readers (by file suffix) yield rows as dicts; converters (by the catalog's ``convert.format``)
write the files the lab reads:

* ``squad`` → ``corpus.jsonl`` ``{id, title, text}`` + ``questions.jsonl``
  ``{id, question, answers, context_id}`` (``rag ingest`` / ``rag eval``);
* ``summarize`` → ``dev.jsonl`` ``{id, title, document, summary}`` (``eval summarize``);
* ``parallel_lines`` → ``dev.jsonl`` ``{id, ko, en}`` (``eval translate``);
* ``sft`` → ``train.jsonl`` ``{id, instruction, input, output}`` (``finetune``).

A row without a needed column is an :class:`InputFileError` naming the file, row and field:
nothing half-converted is ever used (the caller writes into a temporary folder first).
"""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import InputFileError, MissingDependencyError
from ..registry import Registry

Reader = Callable[[Path], Iterator[dict[str, Any]]]
Converter = Callable[[dict[str, Path], Path, dict[str, Any]], dict[str, str]]

READERS: Registry[Reader] = Registry("dataset file reader")
CONVERTERS: Registry[Converter] = Registry("dataset converter")


@READERS.register(".parquet")
def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise MissingDependencyError("pyarrow", extra="hf", purpose="reading Parquet datasets") from e
    yield from pq.read_table(path).to_pylist()


@READERS.register(".csv")
def _read_csv(path: Path) -> Iterator[dict[str, Any]]:
    csv.field_size_limit(1 << 30)  # news articles can be long
    with path.open(encoding="utf-8-sig", newline="") as f:
        yield from csv.DictReader(f)


@READERS.register(".jsonl")
def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputFileError(path, f"invalid JSON: {e.msg}", line=n) from None


@READERS.register(".json")
def _read_json(path: Path) -> Iterator[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):  # {"data": [...]} (SQuAD files) or {"rows": [...]}
        data = next((v for v in data.values() if isinstance(v, list)), [])
    yield from data


def rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a downloaded file, read by its suffix."""
    return READERS.get(path.suffix.lower())(path)


def _field(row: dict[str, Any], names: tuple[str, ...], path: Path, n: int) -> Any:
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    raise InputFileError(path, f"row has none of the columns {', '.join(names)} (it has: {', '.join(row)})",
                         line=n, field=names[0])


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _answers(value: Any) -> list[str]:
    """SQuAD answers in any of their shapes: {"text": [...]}, [{"text": ...}], [str], str."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [value]
    if isinstance(value, dict):
        t = value.get("text")
        return [str(x) for x in (t if isinstance(t, list) else [t]) if x is not None]
    if isinstance(value, list):
        return [str(x["text"]) if isinstance(x, dict) else str(x) for x in value]
    return []


@CONVERTERS.register("squad")
def squad_to_rag(files: dict[str, Path], out: Path, options: dict[str, Any]) -> dict[str, str]:
    """Question/context/answers rows → a corpus of unique contexts and questions pointing at them."""
    src = files["rows"]
    corpus: dict[str, dict[str, Any]] = {}
    questions = []
    for n, row in enumerate(rows(src), 1):
        context = str(_field(row, ("context",), src, n))
        cid = "ctx-" + hashlib.sha1(context.encode("utf-8")).hexdigest()[:12]
        corpus.setdefault(cid, {"id": cid, "title": str(row.get("title") or ""), "text": context})
        answers = _answers(_field(row, ("answers", "answer"), src, n))
        questions.append({"id": str(row.get("id") or f"q{n}"), "question": str(_field(row, ("question",), src, n)),
                          "answers": answers, "context_id": cid})
    _write_jsonl(out / "corpus.jsonl", list(corpus.values()))
    _write_jsonl(out / "questions.jsonl", questions)
    return {"corpus": "corpus.jsonl", "questions": "questions.jsonl"}


@CONVERTERS.register("summarize")
def to_summarize(files: dict[str, Path], out: Path, options: dict[str, Any]) -> dict[str, str]:
    src = files["rows"]
    recs = [{"id": str(row.get("id") or f"s{n}"), "title": str(row.get("title") or ""),
             "document": str(_field(row, ("document", "text", "article"), src, n)),
             "summary": str(_field(row, ("summary",), src, n))} for n, row in enumerate(rows(src), 1)]
    _write_jsonl(out / "dev.jsonl", recs)
    return {"dev": "dev.jsonl"}


@CONVERTERS.register("parallel_lines")
def parallel_lines(files: dict[str, Path], out: Path, options: dict[str, Any]) -> dict[str, str]:
    """Two line-aligned text files (``ko``, ``en``) → ``{id, ko, en}`` pairs (blank pairs dropped)."""
    ko = files["ko"].read_text(encoding="utf-8").splitlines()
    en = files["en"].read_text(encoding="utf-8").splitlines()
    if len(ko) != len(en):
        raise InputFileError(files["en"], f"has {len(en)} lines but {files['ko'].name} has {len(ko)}; "
                             "the two sides must be line-aligned")
    recs = [{"id": f"mt{n}", "ko": k.strip(), "en": e.strip()}
            for n, (k, e) in enumerate(zip(ko, en), 1) if k.strip() and e.strip()]
    _write_jsonl(out / "dev.jsonl", recs)
    return {"dev": "dev.jsonl"}


@CONVERTERS.register("sft")
def to_sft(files: dict[str, Path], out: Path, options: dict[str, Any]) -> dict[str, str]:
    src = files["rows"]
    recs = [{"id": str(row.get("id") or f"i{n}"), "instruction": str(_field(row, ("instruction",), src, n)),
             "input": str(row.get("input") or ""), "output": str(_field(row, ("output",), src, n))}
            for n, row in enumerate(rows(src), 1)]
    _write_jsonl(out / "train.jsonl", recs)
    return {"train": "train.jsonl"}
