"""PEFT LoRA adapters as GGUF LoRA files for llama.cpp — written with the ``gguf`` package.

A GGUF LoRA is small (megabytes) and is applied on top of the *original* quantized base
GGUF at load time, so it keeps a fine-tune that re-quantizing a merged model can wash out
(measured: a merged SmolLM2-135M re-quantized to Q4_1 lost it; this adapter on the Q4_1
base kept it). The layout follows llama.cpp's ``convert_lora_to_gguf.py``: tensors
``<gguf name>.lora_a`` (rank × in) and ``.lora_b`` (out × rank), ``adapter.lora.alpha`` and,
for the llama architecture, the q/k rows permuted the way llama.cpp stores rotary weights.

The llama.cpp backend applies such a file with
:meth:`llmlab.models.llamacpp.LlamaCppEngine.attach_lora` when a model's spec
names an adapter (a fine-tuning output folder or the file itself).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputFileError, InvalidParameterError, MissingDependencyError

#: GGUF architectures this writer supports -> whether q/k rows are permuted (llama.cpp's rotary layout)
ARCHITECTURES = {"llama": True, "qwen2": False, "qwen3": False, "gemma": False, "gemma2": False}
#: Hugging Face ``model_type`` -> GGUF architecture
HF_MODEL_TYPES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gemma": "gemma",
                  "gemma2": "gemma2"}
LORA_TYPES = ("f32", "f16", "q8_0")


@dataclass(frozen=True)
class BaseShape:
    """What the writer needs to know about the base model."""

    arch: str  # GGUF architecture name
    n_head: int
    n_head_kv: int
    n_layers: int


def base_shape_from_gguf(path: str | Path) -> BaseShape:
    import gguf

    reader = gguf.GGUFReader(str(path))

    def field(key: str):
        f = reader.get_field(key)
        if f is None:
            raise InputFileError(path, f"missing GGUF metadata {key!r}")
        return f.contents()

    arch = field("general.architecture")
    n_head = int(field(f"{arch}.attention.head_count"))
    kv = reader.get_field(f"{arch}.attention.head_count_kv")
    return BaseShape(arch, n_head, int(kv.contents()) if kv is not None else n_head, int(field(f"{arch}.block_count")))


def base_shape_from_config(folder: str | Path) -> BaseShape:
    cfg = json.loads((Path(folder) / "config.json").read_text())
    cfg = cfg.get("text_config", cfg)
    arch = HF_MODEL_TYPES.get(cfg.get("model_type", ""))
    if arch is None:
        raise InvalidParameterError(
            f"GGUF LoRA export supports the model types {', '.join(sorted(HF_MODEL_TYPES))}, not "
            f"{cfg.get('model_type')!r}; export the merged model instead (llmlab finetune export DIR --gguf --merged)")
    n_head = int(cfg["num_attention_heads"])
    return BaseShape(arch, n_head, int(cfg.get("num_key_value_heads") or n_head), int(cfg["num_hidden_layers"]))


def permute_rows(w, n_head: int, n_head_kv: int | None = None):
    """llama.cpp's rotary layout for q/k weights (``LlamaModel.permute`` in convert_hf_to_gguf.py)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _adapter_alpha(cfg: dict[str, Any]) -> float:
    """The alpha llama.cpp needs so that its scale alpha / rank equals PEFT's scaling."""
    for key in ("rank_pattern", "alpha_pattern"):
        if cfg.get(key):
            raise InvalidParameterError(f"the adapter uses a per-module {key}; GGUF LoRA supports one rank and alpha")
    if cfg.get("use_dora"):
        raise InvalidParameterError("DoRA adapters cannot be written as a GGUF LoRA; export the merged model instead")
    if cfg.get("modules_to_save"):
        raise InvalidParameterError(f"the adapter also trains whole modules ({cfg['modules_to_save']}); "
                                    "export the merged model instead (--merged)")
    r, alpha = int(cfg["r"]), float(cfg["lora_alpha"])
    return alpha * math.sqrt(r) if cfg.get("use_rslora") else alpha


def _encode(arr, qtype: str):
    """(data, raw_dtype) for one tensor; q8_0 needs rows of a multiple of 32 (else f16)."""
    import gguf
    import numpy as np

    if qtype == "q8_0" and arr.shape[-1] % 32 == 0:
        return gguf.quants.quantize(arr.astype(np.float32), gguf.GGMLQuantizationType.Q8_0), \
            gguf.GGMLQuantizationType.Q8_0
    if qtype == "f32":
        return arr.astype(np.float32), None
    return arr.astype(np.float16), None


def write_gguf_lora(adapter_dir: str | Path, out_path: str | Path, base: BaseShape, *, outtype: str = "f16") -> Path:
    """Convert the PEFT adapter in ``adapter_dir`` to a GGUF LoRA at ``out_path``."""
    if outtype not in LORA_TYPES:
        raise InvalidParameterError(f"GGUF LoRA type {outtype!r}: valid types are {', '.join(LORA_TYPES)}")
    if base.arch not in ARCHITECTURES:
        raise InvalidParameterError(
            f"GGUF LoRA export supports the architectures {', '.join(sorted(ARCHITECTURES))}, not {base.arch!r}; "
            "export the merged model instead (llmlab finetune export DIR --gguf --merged)")
    try:
        import gguf
        from safetensors.torch import load_file
    except ImportError:
        raise MissingDependencyError("gguf", extra="hf", purpose="GGUF export") from None
    adir = Path(adapter_dir)
    cfg = json.loads((adir / "adapter_config.json").read_text())
    alpha = _adapter_alpha(cfg)
    weights_file = adir / "adapter_model.safetensors"
    if not weights_file.exists():
        raise InputFileError(weights_file, "missing: GGUF export reads the adapter's safetensors weights")
    tensors = {k: v.float().numpy() for k, v in load_file(str(weights_file)).items()}  # bf16 (QLoRA) too
    arch_enum = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[base.arch]
    names = gguf.get_tensor_name_map(arch_enum, base.n_layers)
    pairs: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        module = key.removeprefix("base_model.model.")
        for part, tag in ((".lora_A.weight", "a"), (".lora_B.weight", "b")):
            if module.endswith(part):
                pairs.setdefault(module[: -len(part)], {})[tag] = value
                break
        else:
            raise InvalidParameterError(f"unexpected tensor {key!r} in the adapter (only LoRA A/B matrices can be exported)")
    writer = gguf.GGUFWriter(str(out_path), base.arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    permute = ARCHITECTURES[base.arch]
    for module in sorted(pairs):
        ab = pairs[module]
        if set(ab) != {"a", "b"}:
            raise InvalidParameterError(f"adapter module {module} lacks its lora_A or lora_B matrix")
        gname = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if gname is None:
            raise InvalidParameterError(f"no llama.cpp tensor corresponds to {module!r} ({base.arch})")
        b = ab["b"]
        if permute and module.endswith("q_proj"):
            b = permute_rows(b, base.n_head, base.n_head)
        elif permute and module.endswith("k_proj"):
            b = permute_rows(b, base.n_head, base.n_head_kv)
        for suffix, arr in ((".lora_a", ab["a"]), (".lora_b", b)):
            data, raw = _encode(arr, outtype)
            writer.add_tensor(gname + suffix, data, raw_dtype=raw)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(out_path)


# -- for the llama.cpp backend ----------------------------------------------------------------
def is_gguf_lora(path: str | Path) -> bool:
    """Whether a GGUF file is a LoRA adapter (``general.type == "adapter"``)."""
    try:
        import gguf

        f = gguf.GGUFReader(str(path)).get_field("general.type")
        return f is not None and f.contents() == "adapter"
    except (ImportError, OSError, ValueError):
        return False


def find_gguf_lora(folder: str | Path) -> Path | None:
    """The GGUF LoRA in a fine-tuning output folder (written by ``llmlab finetune export --gguf``)."""
    p = Path(folder)
    if p.is_file():
        return p if is_gguf_lora(p) else None
    for cand in sorted(p.glob("*.gguf")):
        if is_gguf_lora(cand):
            return cand
    return None
