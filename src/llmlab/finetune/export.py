"""``llmlab finetune export DIR --gguf``: fine-tunes for llama.cpp.

Two kinds of file, both written into the fine-tuning folder (or ``--out``):

* ``adapter-<type>.gguf`` — the LoRA adapter as a GGUF LoRA (:mod:`.gguf_lora`, offline, a few MB),
  applied by llama.cpp on top of the original base GGUF. The default for LoRA runs: it keeps
  the fine-tune however the base is quantized.
* ``model-<quant>.gguf`` — the merged model (``--merged``; always for full fine-tunes), converted
  by llama.cpp's own ``convert_hf_to_gguf.py`` (:mod:`.llama_cpp_tools`) and, for k-quants,
  re-quantized by the installed llama.cpp. A small model re-quantized to 4 bits can lose
  the fine-tune — compare before relying on it.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError
from .gguf_lora import BaseShape, base_shape_from_config, base_shape_from_gguf, write_gguf_lora
from .runcard import FILENAME, RunCard

QUANTS = ("f16", "q8_0", "q4_k_m")


@dataclass
class ExportedFile:
    kind: str  # "lora" | "merged"
    path: str
    type: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "type": self.type, "bytes": self.bytes}


@dataclass
class ExportResult:
    folder: str
    files: list[ExportedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "files": [f.to_dict() for f in self.files], "notes": self.notes}


def adapter_base(folder: Path) -> str:
    """The base model name of an adapter folder: the run card's, else PEFT's ``base_model_name_or_path``."""
    if (folder / FILENAME).exists():
        return RunCard.load(folder).base
    base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base:
        raise InvalidParameterError(f"{folder} does not name its base model (no run card, no base_model_name_or_path)")
    return base


def base_shape(base: str, settings) -> BaseShape:
    from ..models.spec import resolve

    spec = resolve(base, settings, backend="transformers")
    if spec.gguf_file:
        return base_shape_from_gguf(Path(spec.path or "") / spec.gguf_file)
    return base_shape_from_config(spec.path or "")


def export_gguf(folder: str | Path, *, quant: str = "f16", merged: bool = False, out_dir: str | Path | None = None,
                settings=None, threads: int | None = None) -> ExportResult:
    """Write the GGUF LoRA (LoRA runs) and/or the merged model GGUF (``merged``, full runs)."""
    from ..config import load_settings

    settings = settings or load_settings()
    if quant not in QUANTS:
        raise InvalidParameterError(f"--quant {quant!r}: valid values are {', '.join(QUANTS)}")
    src = Path(folder)
    is_adapter = (src / "adapter_config.json").exists()
    if not is_adapter and not (src / "config.json").exists():
        raise InvalidParameterError(f"{src} is neither a LoRA adapter folder nor a model folder (no config.json)")
    dest = Path(out_dir) if out_dir else src
    dest.mkdir(parents=True, exist_ok=True)
    result = ExportResult(folder=str(src))
    if is_adapter:
        lora_type = "q8_0" if quant == "q8_0" else "f16"
        path = write_gguf_lora(src, dest / f"adapter-{lora_type}.gguf", base_shape(adapter_base(src), settings),
                               outtype=lora_type)
        result.files.append(ExportedFile("lora", str(path), lora_type, path.stat().st_size))
        if quant == "q4_k_m":
            result.notes.append("the LoRA adapter is written in f16 (k-quants apply to whole models)")
    if merged or not is_adapter:
        result.files.append(_export_merged(src, dest, quant, is_adapter, settings, threads))
        if quant == "q4_k_m":
            result.notes.append("4-bit re-quantization can wash out a small fine-tune: check it with "
                                "llmlab finetune compare, or use the GGUF LoRA on the original base")
    return result


def _export_merged(src: Path, dest: Path, quant: str, is_adapter: bool, settings, threads: int | None) -> ExportedFile:
    from .llama_cpp_tools import convert_hf_folder, quantize

    work = dest / ".merged-hf"
    try:
        if is_adapter:
            from .merge import merge

            merge(src, work, settings=settings, threads=threads)
            model_dir = work
        else:
            model_dir = src
        outtype = quant if quant in ("f16", "q8_0") else "f16"
        out = convert_hf_folder(model_dir, dest / f"model-{outtype}.gguf", outtype, settings.home)
        if quant == "q4_k_m":
            final = quantize(out, dest / "model-q4_k_m.gguf", "q4_k_m", threads)
            out.unlink()
            out = final
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportedFile("merged", str(out), quant, out.stat().st_size)
