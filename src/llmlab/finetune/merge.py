"""``llmlab finetune merge``: fold a LoRA adapter into its base, giving a plain model folder.

The base is loaded through the transformers backend exactly as for generation (a GGUF base
dequantized), the adapter applied with PEFT, ``merge_and_unload`` adds ``B·A·scale`` into the
weights, and the result is saved as a standard Hugging Face folder with the fine-tune's
tokenizer and a copy of the run card.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError
from .runcard import FILENAME, RunCard


@dataclass
class MergeResult:
    out: str
    base: str
    adapter: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "base": self.base, "adapter": self.adapter, "bytes": self.bytes}


def merge(adapter_dir: str | Path, out: str | Path, *, settings=None, threads: int | None = None) -> MergeResult:
    """Merge the adapter in ``adapter_dir`` into its base model and save the result to ``out``."""
    from ..config import load_settings
    from ..models.hf import TransformersBackend
    from ..models.spec import resolve

    settings = settings or load_settings()
    adir = Path(adapter_dir)
    if not (adir / "adapter_config.json").exists():
        raise InvalidParameterError(f"{adir} holds no LoRA adapter (adapter_config.json); a full fine-tune needs no merge")
    out = Path(out)
    if out.resolve() == adir.resolve():
        raise InvalidParameterError("--out must be a new folder, not the adapter folder")
    spec = resolve(str(adir), settings, backend="transformers")
    options: dict[str, Any] = {"device": "cpu", "dtype": "float32"}
    if threads:
        options["threads"] = threads
    backend = TransformersBackend.load(spec, settings, **options)
    try:
        merged = backend.model.merge_and_unload()
        out.mkdir(parents=True, exist_ok=True)
        merged.save_pretrained(str(out))
        backend.tokenizer.save_pretrained(str(out))
    finally:
        backend.close()
    base = RunCard.load(adir).base if (adir / FILENAME).exists() else \
        json.loads((adir / "adapter_config.json").read_text()).get("base_model_name_or_path", "")
    if (adir / FILENAME).exists():
        card = RunCard.load(adir)
        card.extra["merged_from"] = str(adir.resolve())
        card.save(out)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    return MergeResult(out=str(out), base=base, adapter=str(adir), bytes=size)
