"""Storing uploaded files safely under ``$LLMLAB_HOME/uploads``.

The client's file name is never used as a path: the stored name is generated
(``<12 hex>-<sanitised stem>.<type>``), created exclusively (nothing is overwritten), and
checked to lie inside the upload folder. The type comes from the content — PDF and DOCX
by their magic bytes and structure, text by decoding it (UTF-8, UTF-16 with BOM, CP949)
— and must agree with the name's extension when there is one. Oversized files are cut
off while they stream in, not after.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
import uuid
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import InvalidParameterError
from .errors import NotFoundError, PayloadTooLargeError, UnsupportedMediaTypeError

CHUNK = 64 * 1024
#: extension the client may give → the type its content must have
EXTENSIONS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".pdf": "pdf", ".docx": "docx",
              ".html": "html", ".htm": "html", ".jsonl": "jsonl"}
TEXT_TYPES = ("txt", "md", "html", "jsonl")
_ID = re.compile(r"^[0-9a-f]{12}$")


@dataclass
class StoredUpload:
    id: str
    name: str  # the client's file name, sanitised (for display only)
    path: str
    type: str
    size: int
    sha256: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("path")  # the server's folders are not the client's business
        return d


def safe_stem(name: str, max_len: int = 60) -> str:
    """A file-name stem safe on any system: no folders, no dots first, letters/digits/-/_ only."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name or ""))[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    stem = re.sub(r"[^\w-]+", "_", stem, flags=re.UNICODE).strip("_.-")
    return stem[:max_len] or "upload"


def claimed_type(name: str) -> str | None:
    """The type the client's extension claims (None: no extension); unknown extensions are refused."""
    base = re.split(r"[\\/]", name or "")[-1]
    if "." not in base.lstrip("."):
        return None
    ext = "." + base.rsplit(".", 1)[1].lower()
    if ext not in EXTENSIONS:
        raise UnsupportedMediaTypeError(f"{ext} files are not accepted; allowed: {', '.join(sorted(EXTENSIONS))}")
    return EXTENSIONS[ext]


def decode_upload(data: bytes) -> str:
    """Text in UTF-8, UTF-16 (with BOM) or CP949, with almost no control characters; else raise."""
    from ..text import UndecodableError, decode_text

    try:
        text, _ = decode_text(data, guess=False)  # no guessing: a stranger's bytes either decode or are refused
    except UndecodableError as e:
        raise UnsupportedMediaTypeError(f"the content is not text: {e} (nor a PDF or DOCX file)") from None
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f")
    if controls > max(2, len(text) // 200):
        raise UnsupportedMediaTypeError("the content looks binary (control characters), not text")
    return text


def sniff(path: Path, claimed: str | None) -> str:
    """The file's type, from its content, consistent with what its name claims."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"%PDF-"):
        detected = "pdf"
    elif head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                names = set(z.namelist())
        except (zipfile.BadZipFile, OSError):
            raise UnsupportedMediaTypeError("the content is a damaged ZIP archive") from None
        if "word/document.xml" not in names:
            raise UnsupportedMediaTypeError("the content is a ZIP archive but not a Word (.docx) document")
        detected = "docx"
    else:
        text = decode_upload(path.read_bytes())
        detected = claimed if claimed in TEXT_TYPES else "txt"
        if detected == "jsonl":
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        json.loads(line)
                    except ValueError:
                        raise UnsupportedMediaTypeError(f"line {n} is not JSON, so this is not a .jsonl file") from None
        if claimed is not None and claimed not in TEXT_TYPES:
            raise UnsupportedMediaTypeError(f"the name says {claimed} but the content is text")
    if claimed is not None and claimed != detected:
        raise UnsupportedMediaTypeError(f"the name says {claimed} but the content is {detected}")
    return detected


class UploadStore:
    """The upload folder: store, look up, delete."""

    def __init__(self, root: Path, *, max_bytes: int, allowed: list[str] | tuple[str, ...]):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.allowed = tuple(allowed)

    def _inside(self, p: Path) -> Path:
        root = self.root.resolve()
        rp = p.resolve()
        if rp.parent != root:
            raise InvalidParameterError("refusing a path outside the upload folder")
        return rp

    def store(self, src: BinaryIO, name: str) -> StoredUpload:
        """Copy ``src`` into the folder under a generated name; check size and type."""
        claimed = claimed_type(name)
        if claimed is not None and claimed not in self.allowed:
            raise UnsupportedMediaTypeError(f"{claimed} files are not accepted here; allowed: {', '.join(self.allowed)}")
        self.root.mkdir(parents=True, exist_ok=True)
        uid = uuid.uuid4().hex[:12]
        tmp = self._inside(self.root / f".partial-{uid}")
        digest, size = hashlib.sha256(), 0
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PayloadTooLargeError(f"the file is larger than this server's upload limit of "
                                                   f"{self.max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise InvalidParameterError("the file is empty")
            kind = sniff(tmp, claimed)
            if kind not in self.allowed:
                raise UnsupportedMediaTypeError(f"{kind} files are not accepted here; allowed: {', '.join(self.allowed)}")
            final = self._inside(self.root / f"{uid}-{safe_stem(name)}.{kind}")
            os.link(tmp, final)  # fails rather than overwrite
        finally:
            tmp.unlink(missing_ok=True)
        return StoredUpload(id=uid, name=re.split(r"[\\/]", name or "")[-1][:200] or "upload", path=str(final),
                            type=kind, size=size, sha256=digest.hexdigest())

    def path(self, upload_id: str) -> Path:
        if not _ID.match(upload_id or ""):
            raise InvalidParameterError(f"invalid upload id {upload_id!r}: 12 hex digits")
        found = sorted(self.root.glob(f"{upload_id}-*")) if self.root.is_dir() else []
        if not found:
            raise NotFoundError(f"no upload {upload_id!r}")
        return self._inside(found[0])

    def list(self) -> list[dict]:
        if not self.root.is_dir():
            return []
        out = []
        for p in sorted(self.root.iterdir(), key=lambda p: p.stat().st_mtime):
            if p.name.startswith(".") or not _ID.match(p.name[:12]):
                continue
            out.append({"id": p.name[:12], "file": p.name[13:], "type": p.suffix.lstrip("."), "size": p.stat().st_size})
        return out

    def delete(self, upload_id: str) -> None:
        self.path(upload_id).unlink()
