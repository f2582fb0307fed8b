"""The result every task preset returns: the answer plus how it was produced."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..types import Completion


@dataclass
class TaskResult:
    """A task's answer (``text``), parsed data (``data``), details (``info``) and the calls made."""

    task: str
    model: str
    text: str
    data: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    completions: list[Completion] = field(default_factory=list)

    @property
    def usage(self) -> dict[str, int]:
        pt = sum(c.usage.prompt_tokens for c in self.completions)
        ct = sum(c.usage.completion_tokens for c in self.completions)
        return {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}

    @property
    def latency_s(self) -> float:
        return round(sum(c.latency_s for c in self.completions), 4)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "text": self.text,
            "data": self.data,
            **self.info,
            "calls": len(self.completions),
            "usage": self.usage,
            "latency_s": self.latency_s,
            "run_ids": [c.run_id for c in self.completions if c.run_id is not None],
        }
