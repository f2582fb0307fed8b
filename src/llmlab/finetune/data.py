"""Fine-tuning datasets: read a file in one of the supported formats into typed examples.

Formats (a registry, so new ones plug in by name):

* ``alpaca`` — ``{instruction, input?, output, system?}`` (also ``{prompt, completion}``), JSONL or CSV;
* ``messages`` — ``{messages: [{role, content}]}`` (OpenAI) or ``{conversations: [{from, value}]}``
  (ShareGPT, mapped: human → user, gpt → assistant);
* ``text`` — ``{text}`` JSONL, or a ``.txt`` file whose blank-line-separated paragraphs are examples.

Files can be JSONL, a JSON array, CSV/TSV, text, or a Hugging Face ``datasets`` folder saved with
``save_to_disk``. Reading never stops at the first bad record: every problem becomes a
:class:`DataError` with its line, so the linter can list them all.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import InputFileError
from ..registry import Registry
from ..text import UndecodableError, decode_text
from ..textcheck import unencodable_problem
from ..types import ROLES, Message


@dataclass
class Example:
    """One training example: a conversation (``messages``) or a plain text (``text``)."""

    line: int  # 1-based line (JSONL/CSV/text) or record number (JSON array, datasets folder)
    messages: list[Message] | None = None
    text: str | None = None

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def contents(self) -> list[str]:
        """Every piece of text in the example (for PII and duplicate checks)."""
        return [m.content for m in self.messages] if self.messages is not None else [self.text or ""]

    def full_text(self) -> str:
        if self.messages is None:
            return self.text or ""
        return "\n".join(f"{m.role}: {m.content}" for m in self.messages)

    def prompt_text(self) -> str:
        """What the model is asked (everything but the last answer): the part that must not leak into eval."""
        if self.messages is None:
            return self.text or ""
        return "\n".join(f"{m.role}: {m.content}" for m in self.messages[:-1])

    def to_dict(self) -> dict[str, Any]:
        if self.messages is not None:
            return {"messages": [m.to_dict() for m in self.messages]}
        return {"text": self.text}


@dataclass
class DataError:
    """A record the trainer cannot use: where, and what is wrong."""

    line: int | None
    problem: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "problem": self.problem}


@dataclass
class Dataset:
    """What a file held: its format, the usable examples and the problems found."""

    path: str
    format: str
    examples: list[Example] = field(default_factory=list)
    errors: list[DataError] = field(default_factory=list)
    n_records: int = 0

    def raise_for_errors(self) -> None:
        """Raise an :class:`InputFileError` naming the first problem (and how many there are)."""
        if self.errors:
            e = self.errors[0]
            more = f" (and {len(self.errors) - 1} more problem(s); run: llmlab data check {self.path})" \
                if len(self.errors) > 1 else ""
            raise InputFileError(self.path, e.problem + more, line=e.line)
        if not self.examples:
            raise InputFileError(self.path, "no usable examples")


class RecordError(ValueError):
    """A record's problem (turned into a :class:`DataError` with the record's line)."""


# -- formats: record (dict) -> Example fields ------------------------------------------------
Parser = Callable[[dict[str, Any]], dict[str, Any]]
FORMATS: Registry[Parser] = Registry("dataset format")

SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
                  "bot": "assistant", "model": "assistant", "system": "system", "tool": "tool"}


def _text_field(rec: dict[str, Any], name: str, *, required: bool = True) -> str:
    if name not in rec or rec[name] is None:
        if required:
            raise RecordError(f"missing field {name!r}")
        return ""
    value = rec[name]
    if not isinstance(value, str):
        raise RecordError(f"field {name!r} must be text, got {type(value).__name__}")
    if required and not value.strip():
        raise RecordError(f"field {name!r} is empty")
    return value


@FORMATS.register("alpaca")
def parse_alpaca(rec: dict[str, Any]) -> dict[str, Any]:
    """{instruction, input?, output, system?} → system? + user + assistant (also {prompt, completion})."""
    if "instruction" not in rec and "prompt" in rec:
        user, answer = _text_field(rec, "prompt"), _text_field(rec, "completion")
    else:
        instruction = _text_field(rec, "instruction")
        extra = _text_field(rec, "input", required=False)
        user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        answer = _text_field(rec, "output")
    system = _text_field(rec, "system", required=False)
    msgs = ([Message("system", system)] if system.strip() else []) + [Message("user", user), Message("assistant", answer)]
    return {"messages": msgs}


def _message_content(m: dict[str, Any], i: int, key: str) -> str:
    content = m.get(key)
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
            raise RecordError(f"message {i + 1}: only text content parts are supported")
        content = "".join(texts)
    if not isinstance(content, str):
        raise RecordError(f"message {i + 1}: missing or non-text {key!r}")
    if not content.strip():
        raise RecordError(f"message {i + 1} ({m.get('role') or m.get('from')}): empty {key!r}")
    return content


@FORMATS.register("messages")
def parse_messages(rec: dict[str, Any]) -> dict[str, Any]:
    """OpenAI {messages: [{role, content}]} or ShareGPT {conversations: [{from, value}]}."""
    if "messages" in rec:
        raw, role_key, content_key, mapping = rec["messages"], "role", "content", None
    elif "conversations" in rec:
        raw, role_key, content_key, mapping = rec["conversations"], "from", "value", SHAREGPT_ROLES
    else:
        raise RecordError("missing field 'messages' (or ShareGPT 'conversations')")
    if not isinstance(raw, list) or not raw:
        raise RecordError("'messages' must be a non-empty list")
    msgs = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise RecordError(f"message {i + 1} is not an object")
        role = m.get(role_key)
        if mapping is not None:
            role = mapping.get(str(role).lower(), role)
        if role not in ROLES:
            valid = ", ".join(sorted(mapping)) if mapping is not None else ", ".join(ROLES)
            raise RecordError(f"message {i + 1}: unknown role {m.get(role_key)!r}; valid: {valid}")
        msgs.append(Message(role, _message_content(m, i, content_key)))
    if not any(m.role == "assistant" for m in msgs):
        raise RecordError("the conversation has no assistant message: nothing to learn from")
    if msgs[-1].role != "assistant":
        raise RecordError(f"the conversation ends with {msgs[-1].role!r}, not the assistant")
    return {"messages": msgs}


@FORMATS.register("text")
def parse_text(rec: dict[str, Any]) -> dict[str, Any]:
    """{text} — language-modelling data; every token is trained on."""
    return {"text": _text_field(rec, "text")}


def detect_format(rec: dict[str, Any]) -> str | None:
    """The format a record looks like (None: none of them)."""
    if "messages" in rec or "conversations" in rec:
        return "messages"
    if "instruction" in rec or "output" in rec or ("prompt" in rec and "completion" in rec):
        return "alpaca"
    if "text" in rec:
        return "text"
    return None


# -- file readers: path -> (line, record | DataError) -----------------------------------------
Record = tuple[int, "dict[str, Any] | DataError"]


def _decoded_lines(path: Path) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, problem) for every line.

    The file is decoded as the document loaders and uploads decode it (UTF-8, a byte-order mark,
    or CP949 — what Korean Windows writes). A file that is none of these is read line by line as
    UTF-8, so each undecodable line gets its own problem and the good lines are kept.
    """
    data = path.read_bytes()
    try:
        text, _ = decode_text(data, guess=False)
    except UndecodableError as e:
        if "NUL" in str(e) or data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise InputFileError(path, str(e)) from None
    else:
        for n, line in enumerate(text.split("\n"), 1):
            yield n, line.rstrip("\r"), None
        return
    for n, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), 1):
        try:
            yield n, raw.decode("utf-8").rstrip("\r"), None
        except UnicodeDecodeError as e:
            yield n, None, (f"not UTF-8 or CP949 text (byte {e.start + 1}: {e.reason}); wrong encoding? "
                            "save the file as UTF-8")


def read_jsonl(path: Path) -> Iterator[Record]:
    for n, line, problem in _decoded_lines(path):
        if problem:
            yield n, DataError(n, problem)
            continue
        assert line is not None
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            yield n, DataError(n, f"invalid JSON: {e.msg} (column {e.colno})")
            continue
        problem = unencodable_problem(rec)
        if problem:
            yield n, DataError(n, problem)
            continue
        yield n, rec if isinstance(rec, dict) else DataError(n, f"expected a JSON object, got {type(rec).__name__}")


def read_json_array(path: Path) -> Iterator[Record]:
    text = "\n".join(t for _, t, p in _decoded_lines(path) if t is not None)
    try:
        recs = json.loads(text)
    except json.JSONDecodeError as e:
        yield e.lineno, DataError(e.lineno, f"invalid JSON: {e.msg} (column {e.colno})")
        return
    if not isinstance(recs, list):
        yield 1, DataError(1, "a .json file must hold a list of records (or use JSONL: one object per line)")
        return
    for i, rec in enumerate(recs, 1):
        problem = unencodable_problem(rec)
        if problem:
            yield i, DataError(i, f"record {i}: {problem}")
            continue
        yield i, rec if isinstance(rec, dict) else DataError(i, f"record {i}: expected an object")


def read_csv(path: Path) -> Iterator[Record]:
    lines = []
    for n, line, problem in _decoded_lines(path):
        if problem:
            yield n, DataError(n, problem)
            line = ""
        lines.append(line or "")
    reader = csv.DictReader(io.StringIO("\n".join(lines)), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    start = 2
    for row in reader:
        if any((v or "").strip() for k, v in row.items() if k is not None):
            if None in row:
                yield start, DataError(start, "more values than header columns")
            else:
                yield start, {k: v for k, v in row.items() if k is not None}
        start = reader.line_num + 1


def read_text_paragraphs(path: Path) -> Iterator[Record]:
    para: list[str] = []
    first = 0
    for n, line, problem in _decoded_lines(path):
        if problem:
            yield n, DataError(n, problem)
            continue
        assert line is not None
        if line.strip():
            if not para:
                first = n
            para.append(line)
        elif para:
            yield first, {"text": "\n".join(para)}
            para = []
    if para:
        yield first, {"text": "\n".join(para)}


def read_hf_dataset(path: Path | str) -> Iterator[Record]:
    """Rows of a ``datasets`` folder (``save_to_disk``) or ``hf:NAME[:SPLIT]`` from the local cache."""
    try:
        import datasets
    except ImportError:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("datasets", purpose="reading Hugging Face datasets") from None
    try:
        if isinstance(path, Path):
            ds = datasets.load_from_disk(str(path))
        else:
            name, _, split = path.partition(":")
            ds = datasets.load_dataset(name, split=split or "train")
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as e:
        raise InputFileError(path, f"cannot open as a Hugging Face dataset: {e}") from None
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise InputFileError(path, f"no 'train' split (splits: {', '.join(ds)})")
        ds = ds["train"]
    for i, rec in enumerate(ds, 1):
        yield i, dict(rec)


def records(path: str | Path) -> tuple[Iterator[Record], str | None]:
    """The records of a file and the format its kind implies (``.txt`` → text)."""
    if isinstance(path, str) and path.startswith("hf:"):
        return read_hf_dataset(path[3:]), None
    p = Path(path)
    if not p.exists():
        raise InputFileError(p, "file not found")
    if p.is_dir():
        return read_hf_dataset(p), None
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return read_csv(p), None
    if suffix in (".txt", ".md"):
        return read_text_paragraphs(p), "text"
    if suffix == ".json" and p.read_bytes().lstrip(b"\xef\xbb\xbf \r\n\t")[:1] == b"[":
        return read_json_array(p), None
    return read_jsonl(p), None


def load(path: str | Path, format: str | None = None) -> Dataset:
    """Read every record of ``path`` as ``format`` (detected from the first record when None)."""
    if format is not None:
        FORMATS.get(format)  # unknown names list the valid ones
    recs, implied = records(path)
    fmt = format or implied
    out = Dataset(path=str(path), format=fmt or "unknown")
    for line, rec in recs:
        out.n_records += 1
        if isinstance(rec, DataError):
            out.errors.append(rec)
            continue
        if fmt is None:
            fmt = detect_format(rec)
            if fmt is None:
                out.errors.append(DataError(line, f"cannot tell the format from the fields {sorted(rec)}; expected "
                                                  "alpaca {instruction, input, output}, messages {messages} or text {text}"))
                continue
            out.format = fmt
        try:
            out.examples.append(Example(line=line, **FORMATS.get(fmt)(rec)))
        except RecordError as e:
            out.errors.append(DataError(line, str(e)))
    if out.n_records == 0:
        out.errors.append(DataError(None, "the file holds no records"))
    return out
