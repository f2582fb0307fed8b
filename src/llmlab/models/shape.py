"""What memory estimates are made of: a model's shape and this machine's memory.

:class:`ModelShape` describes an architecture (read from metadata by :mod:`.metadata` or
recorded in the catalog), :class:`Machine` the RAM and GPU memory at hand. This module imports
nothing else from llmlab's models, so the catalog, the metadata readers and the estimator
(:mod:`.memory`) can all build on it.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError

GiB = 1024**3
MiB = 1024**2

#: the context llmlab gives a local model unless told otherwise (see models/llamacpp.py)
DEFAULT_MAX_CTX = 4096

# -- GGUF quantization types: bits per weight ------------------------------------------------
#: (bulk bits per weight, bits per weight of the token-embedding/output matrices). A llama.cpp
#: "mix" such as Q4_K_M stores most matrices in Q4_K (4.5 bpw) but gives attn_v and half of the
#: ffn_down matrices Q6_K, which lands near 4.75 bpw overall; the output matrix (or the tied
#: token embedding) is stored as Q6_K. Values follow llama.cpp's llama_tensor_get_type and
#: were checked against published file sizes (e.g. Llama-3.2-3B Q4_K_M: 2.02 GB, estimate 2.00).
GGUF_QUANT_BPW: dict[str, tuple[float, float]] = {
    "f32": (32.0, 32.0),
    "f16": (16.0, 16.0),
    "bf16": (16.0, 16.0),
    "q8_0": (8.5, 8.5),
    "q6_k": (6.5625, 6.5625),
    "q5_k_m": (5.65, 6.5625),
    "q5_k_s": (5.5, 6.5625),
    "q5_1": (6.0, 6.5625),
    "q5_0": (5.5, 6.5625),
    "q4_k_m": (4.75, 6.5625),
    "q4_k_s": (4.55, 6.5625),
    "q4_1": (5.0, 6.5625),
    "q4_0": (4.5, 6.5625),
    "iq4_nl": (4.5, 6.5625),
    "iq4_xs": (4.25, 6.5625),
    "q3_k_l": (4.2, 6.5625),
    "q3_k_m": (3.9, 6.5625),
    "q3_k_s": (3.5, 6.5625),
    "q2_k": (3.0, 6.5625),
}

#: bytes per element of the dtypes safetensors headers and configs name
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
               "F8_E4M3": 1, "F8_E5M2": 1, "float32": 4, "float16": 2, "bfloat16": 2}


@dataclass
class ModelShape:
    """What the estimates need to know about an architecture (read from metadata, never weights)."""

    name: str
    arch: str
    n_params: int
    n_layers: int
    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    n_ff: int
    vocab: int
    context_length: int
    embedding_params: int  # token embedding matrix
    output_params: int  # untied output (lm_head) matrix; 0 when tied to the embedding
    gated_mlp: bool = True  # SwiGLU/GeGLU (3 FFN matrices) vs a plain 2-matrix MLP
    head_dim_v: int | None = None
    sliding_window: int | None = None  # local-attention window, for models that mix local/global layers
    n_swa_layers: int = 0  # how many layers use the sliding window
    weight_bytes: int | None = None  # exact bytes of the weights as stored (GGUF tensors, safetensors)
    weight_format: str = ""  # e.g. "gguf Q4_1", "safetensors BF16"
    path: str | None = None

    @property
    def matrix_params(self) -> int:
        """Parameters outside the embedding/output matrices (transformer blocks, norms)."""
        return max(0, self.n_params - self.embedding_params - self.output_params)

    @property
    def kv_dim(self) -> int:
        """Elements of K plus V that one token stores per layer."""
        return self.n_kv_heads * (self.head_dim + (self.head_dim_v or self.head_dim))


@dataclass
class Machine:
    """This machine's memory: RAM always, GPU only when torch with CUDA is present."""

    ram_total: int
    ram_available: int
    gpu_name: str | None = None
    gpu_total: int | None = None
    gpu_free: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ram_total_bytes": self.ram_total, "ram_total_gib": gib(self.ram_total),
            "ram_available_bytes": self.ram_available, "ram_available_gib": gib(self.ram_available),
            "gpu_name": self.gpu_name,
            "gpu_total_bytes": self.gpu_total, "gpu_total_gib": None if self.gpu_total is None else gib(self.gpu_total),
            "gpu_free_bytes": self.gpu_free, "gpu_free_gib": None if self.gpu_free is None else gib(self.gpu_free),
        }


def gib(n: int | float) -> float:
    return round(n / GiB, 3)


# -- machine resources ---------------------------------------------------------------------------
def machine_resources(probe_gpu: bool = True) -> Machine:
    """Total/available RAM (psutil, else /proc/meminfo) and, when torch sees CUDA, GPU memory.

    torch is imported only when it is installed *and* an NVIDIA/AMD device node exists, so a
    CPU-only machine never pays for importing it.
    """
    total = avail = 0
    try:
        import psutil

        vm = psutil.virtual_memory()
        total, avail = int(vm.total), int(vm.available)
    except ImportError:  # pragma: no cover - psutil is a normal dependency
        info = _meminfo()
        total, avail = info.get("MemTotal", 0), info.get("MemAvailable", info.get("MemFree", 0))
    m = Machine(ram_total=total, ram_available=avail)
    if probe_gpu and _gpu_device_present() and importlib.util.find_spec("torch") is not None:
        try:
            import torch

            if torch.cuda.is_available():
                free, gtotal = torch.cuda.mem_get_info(0)
                m.gpu_name, m.gpu_total, m.gpu_free = torch.cuda.get_device_name(0), int(gtotal), int(free)
        except Exception:  # a broken driver must not break an estimate  # pragma: no cover
            pass
    return m


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                out[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    except OSError:  # pragma: no cover
        pass
    return out


def _gpu_device_present() -> bool:
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd")) or bool(shutil.which("nvidia-smi"))


def normalize_quant(quant: str) -> str:
    q = quant.strip().lower().replace("-", "_")
    if q not in GGUF_QUANT_BPW:
        raise InvalidParameterError(
            f"unknown GGUF quantization type {quant!r}; valid: {', '.join(sorted(GGUF_QUANT_BPW))}")
    return q


def count_params(n_layers: int, hidden: int, n_heads: int, n_kv_heads: int, head_dim: int, n_ff: int, vocab: int,
                 tied: bool = True, gated_mlp: bool = True) -> int:
    """Parameters of a decoder-only transformer from its shape (norms and biases ignored).

    Per layer: attention Q and O are ``hidden × heads·head_dim`` each, K and V
    ``hidden × kv_heads·head_dim`` each; the MLP has 3 (gated) or 2 ``hidden × n_ff`` matrices.
    Plus the ``vocab × hidden`` embedding, and the same again for an untied output matrix.
    """
    attn = 2 * hidden * n_heads * head_dim + 2 * hidden * n_kv_heads * head_dim
    mlp = (3 if gated_mlp else 2) * hidden * n_ff
    return n_layers * (attn + mlp) + vocab * hidden * (1 if tied else 2)
