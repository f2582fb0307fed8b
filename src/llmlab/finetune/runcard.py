"""The run card ``llmlab_run.json`` written into every fine-tuning output folder.

It names the base model exactly as the user gave it (so ``resolve()`` loads the adapter on
the right base), the data (path, checksum, counts), the parameters and the metrics. A folder
with a run card and a PEFT adapter is a model like any other: ``--model runs/ko``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import InputFileError

FILENAME = "llmlab_run.json"


def file_sha256(path: str | Path) -> str | None:
    p = Path(path)
    if not p.is_file():
        return None
    h = hashlib.sha256()
    with p.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class RunCard:
    base: str
    method: str
    data: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    chat_template: str | None = None  # "model" or "fallback:NAME": the template trained with
    created_at: str = ""
    llmlab_version: str = ""
    ledger_run_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "method": self.method, "data": self.data, "params": self.params,
                "metrics": self.metrics, "chat_template": self.chat_template, "created_at": self.created_at,
                "llmlab_version": self.llmlab_version, "ledger_run_id": self.ledger_run_id, **self.extra}

    def save(self, folder: str | Path) -> Path:
        from .. import __version__

        self.created_at = self.created_at or datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.llmlab_version = self.llmlab_version or __version__
        p = Path(folder) / FILENAME
        from .checkpoints import write_atomic

        write_atomic(p, json.dumps(self.to_dict(), ensure_ascii=False, indent=2, default=str) + "\n")  # marks a finished run
        return p

    @classmethod
    def load(cls, folder: str | Path) -> "RunCard":
        p = Path(folder) / FILENAME
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputFileError(p, "no run card: is this an llmlab fine-tuning output folder?") from None
        except json.JSONDecodeError as e:
            raise InputFileError(p, f"invalid JSON: {e.msg}", line=e.lineno) from None
        if not isinstance(d, dict) or not d.get("base"):
            raise InputFileError(p, "the run card does not name its base model", field="base")
        known = {"base", "method", "data", "params", "metrics", "chat_template", "created_at", "llmlab_version",
                 "ledger_run_id"}
        return cls(**{k: d[k] for k in known if k in d}, extra={k: v for k, v in d.items() if k not in known})
