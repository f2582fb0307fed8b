"""The settings of one fine-tuning run (what ``llmlab finetune`` flags fill in), validated up front.

Everything that can be wrong with a run's parameters is reported here, before any model
is loaded: exclusive flags, ranges, and a method the machine cannot run (QLoRA without CUDA).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidParameterError

METHODS = ("lora", "qlora", "full")
DEFAULT_LR = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5}


@dataclass
class TrainConfig:
    """One fine-tuning run. ``None`` means: the method's default (see :meth:`resolved`)."""

    train: str
    base: str
    out: str
    method: str = "lora"
    eval: str | None = None
    eval_split: float | None = None  # hold out this fraction of TRAIN when no --eval is given
    format: str | None = None
    epochs: float | None = None  # default 1 when max_steps is not set
    max_steps: int | None = None
    lr: float | None = None
    batch_size: int = 4
    grad_accum: int = 1
    max_seq_len: int = 512
    lora_r: int = 16
    lora_alpha: float | None = None  # default 2 × r
    lora_dropout: float = 0.05
    target_modules: list[str] | None = None  # None = every linear layer but the output head
    packing: bool = False
    seed: int = 42
    save_steps: int = 50
    save_total_limit: int = 2
    eval_steps: int | None = None  # default: at every checkpoint
    resume: bool = False
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None
    gradient_checkpointing: bool | None = None  # default: on for QLoRA and on CUDA, off on CPU
    extra: dict[str, Any] = field(default_factory=dict)  # passed to SFTConfig as is (advanced)

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, str):
            self.target_modules = [t.strip() for t in self.target_modules.split(",") if t.strip()] or None
        self.validate()

    def validate(self) -> None:
        def bad(name: str, why: str):
            raise InvalidParameterError(f"--{name.replace('_', '-')}={getattr(self, name)!r}: {why}")

        if self.method not in METHODS:
            bad("method", f"valid methods are {', '.join(METHODS)}")
        if self.epochs is not None and self.max_steps is not None:
            raise InvalidParameterError("give --epochs or --max-steps, not both")
        if self.eval is not None and self.eval_split is not None:
            raise InvalidParameterError("give --eval FILE or --eval-split FRACTION, not both")
        if self.eval_split is not None and not 0 < self.eval_split < 0.5:
            bad("eval_split", "must be between 0 and 0.5 (e.g. 0.05)")
        if self.epochs is not None and self.epochs <= 0:
            bad("epochs", "must be > 0")
        for name in ("max_steps", "batch_size", "grad_accum", "max_seq_len", "lora_r", "save_steps", "save_total_limit",
                     "eval_steps", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                bad(name, "must be ≥ 1")
        if self.max_seq_len < 16:
            bad("max_seq_len", "must be ≥ 16 tokens")
        if self.lr is not None and not 0 < self.lr < 1:
            bad("lr", "must be between 0 and 1 (e.g. 2e-4)")
        if self.lora_alpha is not None and self.lora_alpha <= 0:
            bad("lora_alpha", "must be > 0")
        if not 0 <= self.lora_dropout < 1:
            bad("lora_dropout", "must be in [0, 1)")
        if self.device not in ("auto", "cpu", "cuda"):
            bad("device", "valid values are auto, cpu, cuda")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]

    @property
    def alpha(self) -> float:
        return self.lora_alpha if self.lora_alpha is not None else 2.0 * self.lora_r

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lr"] = self.learning_rate
        if self.method != "full":
            d["lora_alpha"] = self.alpha
        else:
            for k in ("lora_r", "lora_alpha", "lora_dropout", "target_modules"):
                d.pop(k)
        return d
