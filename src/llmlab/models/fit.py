"""Will this model fit this machine? Memory estimates made before anything is loaded.

:func:`estimate_fit` reads metadata only — GGUF headers (with the ``gguf`` package's type
tables), ``config.json`` plus safetensors headers, or a curated catalog entry — and adds up what the runtime will
allocate: weights, KV cache, compute buffers and runtime overhead for inference; trainable
weights, gradients, AdamW states and activations for fine-tuning. Every formula is written
next to the helper that applies it, and docs/models.md explains them for learners.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..errors import InvalidParameterError, MissingDependencyError, ModelNotFoundError

GiB = 1024**3
MiB = 1024**2

#: llama.cpp physical batch (n_ubatch) llmlab and llama-cpp-python use by default
LLAMACPP_UBATCH = 512
#: the context llmlab gives a local model unless told otherwise (see models/llamacpp.py)
DEFAULT_MAX_CTX = 4096

# -- calibrated constants ------------------------------------------------------------------------
# Measured with llama-cpp-python 0.3.36 on the bundled model and on synthetic GGUFs of other
# shapes (RSS growth of a fresh process, prompts that fill the context); see tests/models/test_fit.py.
#: llama.cpp compute memory besides the activations: weight-format conversion and thread scratch
LLAMACPP_COMPUTE_FIXED = 6 * MiB
#: memory llama.cpp holds besides weights, KV and compute: the vocabulary's strings, maps and
#: merges (per token), thread pool, graph metadata
LLAMACPP_OVERHEAD_FIXED = 4 * MiB
LLAMACPP_OVERHEAD_PER_VOCAB = 360  # bytes per vocabulary entry
#: compute memory touched by the first short prompt (what is resident right after start-up)
LLAMACPP_START_COMPUTE = 2 * MiB
#: torch's own resident memory on the CPU, and a CUDA context on a GPU
TORCH_CPU_OVERHEAD = 400 * MiB
CUDA_CONTEXT = 500 * MiB

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

TRAIN_MODES = ("lora", "qlora", "full")
LOAD_IN = ("4bit", "8bit")


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


@dataclass(frozen=True)
class Component:
    """One line of the memory bill."""

    name: str
    bytes: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bytes": int(self.bytes), "gib": gib(self.bytes), "note": self.note}


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


@dataclass
class FitReport:
    """The estimate for one model, one runtime configuration and this machine."""

    model: str
    runtime: str  # "llama.cpp" | "transformers"
    device: str  # "cpu" | "cuda" | "cpu or cuda"
    mode: str  # "inference" | "lora" | "qlora" | "full"
    weights: str  # how the weights are stored, e.g. "gguf Q4_1", "q4_k_m (estimated)", "nf4 (bitsandbytes)"
    context: int
    n_params: int
    components: list[Component]
    machine: Machine
    fits_ram: bool | None
    fits_gpu: bool | None
    verdict: str
    batch_size: int | None = None
    seq_len: int | None = None
    trainable_params: int | None = None
    at_start_bytes: int | None = None  # resident right after loading and a short prompt (llama.cpp)
    assumptions: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(c.bytes for c in self.components)

    def component(self, name: str) -> int:
        return sum(c.bytes for c in self.components if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "runtime": self.runtime, "device": self.device, "mode": self.mode,
            "weights": self.weights, "context": self.context, "batch_size": self.batch_size, "seq_len": self.seq_len,
            "n_params": self.n_params, "trainable_params": self.trainable_params,
            "components": [c.to_dict() for c in self.components],
            "total_bytes": self.total_bytes, "total_gib": gib(self.total_bytes),
            "at_start_bytes": self.at_start_bytes,
            "at_start_gib": None if self.at_start_bytes is None else gib(self.at_start_bytes),
            "machine": self.machine.to_dict(),
            "fits_ram": self.fits_ram, "fits_gpu": self.fits_gpu, "verdict": self.verdict,
            "assumptions": self.assumptions,
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


# -- reading shapes from metadata --------------------------------------------------------------
def read_gguf_header(path: str | Path) -> tuple[dict[str, Any], list[tuple[str, list[int], int, int]]]:
    """Metadata and tensor infos (name, shape, ggml type, bytes) from a GGUF header.

    ``gguf.GGUFReader`` turns every vocabulary string into numpy views, which takes seconds
    for a 150k-token vocabulary; this reads the same header with ``struct`` and the ``gguf``
    package's type tables, skipping the long arrays (their length is kept instead).
    """
    import mmap

    GGML_QUANT_SIZES, GGMLQuantizationType = _gguf_types()

    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != b"GGUF":
            raise ModelNotFoundError(f"{path} is not a GGUF file (bad magic)")
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
        if version < 2:
            raise ModelNotFoundError(f"{path}: GGUF version {version} is too old")
        off = 24

        def string() -> str:
            nonlocal off
            (n,) = struct.unpack_from("<Q", buf, off)
            off += 8 + n
            return bytes(buf[off - n:off]).decode("utf-8", "replace")

        def value(vtype: int, keep: bool = True) -> Any:
            nonlocal off
            if vtype == 8:
                return string()
            if vtype == 9:
                itype, count = struct.unpack_from("<IQ", buf, off)
                off += 12
                if itype in scalar and (count > 64 or not keep):
                    off += struct.calcsize(scalar[itype]) * count
                    return ArrayLength(count)
                if count > 64:  # long string arrays (vocabulary, merges): walk past them
                    for _ in range(count):
                        (n,) = struct.unpack_from("<Q", buf, off)
                        off += 8 + n
                    return ArrayLength(count)
                return [value(itype) for _ in range(count)]
            fmt = scalar[vtype]
            (v,) = struct.unpack_from(fmt, buf, off)
            off += struct.calcsize(fmt)
            return v

        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = string()
            (vtype,) = struct.unpack_from("<I", buf, off)
            off += 4
            meta[key] = value(vtype)
        tensors = []
        for _ in range(n_tensors):
            name = string()
            (n_dims,) = struct.unpack_from("<I", buf, off)
            dims = list(struct.unpack_from(f"<{n_dims}Q", buf, off + 4))
            off += 4 + 8 * n_dims
            ttype, _data_off = struct.unpack_from("<IQ", buf, off)
            off += 12
            n = 1
            for d in dims:
                n *= d
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
            tensors.append((name, dims, ttype, n // block * size))
    return meta, tensors


def _gguf_types():
    try:
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
    except ImportError as e:
        raise MissingDependencyError("gguf", extra="hf", purpose="reading GGUF headers") from e
    return GGML_QUANT_SIZES, GGMLQuantizationType


class ArrayLength(int):
    """A long GGUF array that was skipped; its value is the number of items."""


def shape_from_gguf(path: str | Path, name: str | None = None) -> ModelShape:
    """Architecture and exact tensor sizes from a GGUF file's header (tensor data is not read)."""
    _, GGMLQuantizationType = _gguf_types()
    path = Path(path)
    try:
        meta, tensors = read_gguf_header(path)
    except (OSError, struct.error, ValueError, KeyError, UnicodeDecodeError) as e:
        raise ModelNotFoundError(f"{path} is not a readable GGUF file: {e}") from None
    arch = str(meta.get("general.architecture", "llama"))

    def hp(key: str, default: Any = None) -> Any:
        v = meta.get(f"{arch}.{key}", default)
        if isinstance(v, list):  # per-layer arrays (e.g. head_count_kv): take the largest
            v = max(v) if v else default
        return v

    hidden = int(hp("embedding_length", 0))
    n_heads = int(hp("attention.head_count", 1)) or 1
    n_kv = int(hp("attention.head_count_kv", n_heads) or n_heads)
    head_dim = int(hp("attention.key_length", hidden // n_heads if n_heads else 0))
    n_layers = int(hp("block_count", 0))
    vocab = int(hp("vocab_size", 0) or meta.get("tokenizer.ggml.tokens", 0) or 0)
    emb = out = total = nbytes = 0
    gated = False
    types: dict[str, int] = {}
    for tname, dims, ttype, b in tensors:
        n = 1
        for d in dims:
            n *= d
        total += n
        nbytes += b
        if tname == "token_embd.weight":
            emb += n
        elif tname == "output.weight":
            out += n
        elif tname.endswith("ffn_gate.weight"):
            gated = True
        if len(dims) >= 2:
            tn = GGMLQuantizationType(ttype).name
            types[tn] = types.get(tn, 0) + b
    main_type = max(types, key=types.get) if types else "?"
    swa = hp("attention.sliding_window", None)
    return ModelShape(
        name=name or path.name, arch=arch, n_params=total, n_layers=n_layers, hidden=hidden, n_heads=n_heads,
        n_kv_heads=n_kv, head_dim=head_dim, head_dim_v=int(hp("attention.value_length", head_dim)),
        n_ff=int(hp("feed_forward_length", 0) or 0), vocab=vocab,
        context_length=int(hp("context_length", DEFAULT_MAX_CTX)), embedding_params=emb, output_params=out,
        gated_mlp=gated, sliding_window=int(swa) if swa else None,
        n_swa_layers=_swa_layers(arch, n_layers) if swa else 0, weight_bytes=nbytes,
        weight_format=f"gguf {main_type}", path=str(path),
    )


def _swa_layers(arch: str, n_layers: int) -> int:
    """Layers with sliding-window attention: Gemma 2 alternates 1:1, Gemma 3 has 5 local per global."""
    if arch == "gemma2":
        return n_layers // 2
    if arch == "gemma3":
        return n_layers - (n_layers // 6)
    return 0


def _config_get(cfg: dict, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return default


def shape_from_hf_folder(path: str | Path, name: str | None = None) -> ModelShape:
    """Architecture from ``config.json`` and exact parameter counts from the safetensors headers."""
    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.exists():
        raise ModelNotFoundError(f"{path} has no config.json; it is not a Hugging Face model folder")
    cfg = json.loads(cfg_path.read_text())
    if isinstance(cfg.get("text_config"), dict):  # multimodal wrappers (Gemma 3) keep the LM here
        cfg = {**cfg, **cfg["text_config"]}
    hidden = int(_config_get(cfg, "hidden_size", "n_embd", "d_model", default=0))
    n_heads = int(_config_get(cfg, "num_attention_heads", "n_head", "num_heads", default=1))
    n_kv = int(_config_get(cfg, "num_key_value_heads", "n_kv_heads", "multi_query_group_num", default=n_heads))
    head_dim = int(_config_get(cfg, "head_dim", default=hidden // n_heads if n_heads else 0))
    n_layers = int(_config_get(cfg, "num_hidden_layers", "n_layer", "num_layers", default=0))
    n_ff = int(_config_get(cfg, "intermediate_size", "n_inner", "ffn_dim", default=4 * hidden) or 4 * hidden)
    vocab = int(_config_get(cfg, "vocab_size", default=0))
    ctx = int(_config_get(cfg, "max_position_embeddings", "n_positions", "max_sequence_length", default=2048))
    model_type = str(cfg.get("model_type", "unknown"))
    tied = bool(cfg.get("tie_word_embeddings", model_type not in ("gpt_neox", "llama", "mistral")))
    gated = model_type not in ("gpt_neox", "gpt2", "gptj", "gpt_bigcode", "opt", "bloom", "falcon")
    swa = cfg.get("sliding_window") if model_type.startswith("gemma") else None

    total = emb = out = nbytes = 0
    dtypes: dict[str, int] = {}
    files = sorted(path.glob("*.safetensors"))
    for f in files:
        for tname, info in _safetensors_header(f).items():
            if tname == "__metadata__":
                continue
            n = 1
            for d in info.get("shape", []):
                n *= int(d)
            b = int(info["data_offsets"][1]) - int(info["data_offsets"][0])
            if "vision" in tname or "multi_modal" in tname:  # a multimodal model's image tower
                continue
            total += n
            nbytes += b
            dtypes[info.get("dtype", "?")] = dtypes.get(info.get("dtype", "?"), 0) + b
            if any(k in tname for k in ("embed_tokens", "wte.", "embed_in", "word_embeddings")):
                emb += n
            elif any(k in tname for k in ("lm_head", "embed_out")):
                out += n
    if not files:  # only pytorch .bin weights: count parameters from the config
        shape = shape_from_config(cfg, name or path.name)
        shape.path = str(path)
        return shape
    if not tied and out == 0:
        tied = True
    return ModelShape(
        name=name or path.name, arch=model_type, n_params=total, n_layers=n_layers, hidden=hidden, n_heads=n_heads,
        n_kv_heads=n_kv, head_dim=head_dim, n_ff=n_ff, vocab=vocab, context_length=ctx,
        embedding_params=emb or vocab * hidden, output_params=out, gated_mlp=gated,
        sliding_window=int(swa) if swa else None, n_swa_layers=_swa_layers(model_type.replace("_text", ""), n_layers) if swa else 0,
        weight_bytes=nbytes, weight_format="safetensors " + (max(dtypes, key=dtypes.get) if dtypes else "?"),
        path=str(path),
    )


def _safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file: 8-byte little-endian length, then JSON."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > 100 * MiB:
            raise ModelNotFoundError(f"{path}: implausible safetensors header ({n} bytes)")
        return json.loads(f.read(n))


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


def shape_from_config(cfg: dict, name: str) -> ModelShape:
    """A shape from a config dict alone (parameters counted with :func:`count_params`)."""
    hidden = int(_config_get(cfg, "hidden_size", "n_embd", "hidden", default=0))
    n_heads = int(_config_get(cfg, "num_attention_heads", "n_head", "n_heads", default=1))
    n_kv = int(_config_get(cfg, "num_key_value_heads", "n_kv_heads", default=n_heads))
    head_dim = int(_config_get(cfg, "head_dim", default=hidden // n_heads if n_heads else 0))
    n_layers = int(_config_get(cfg, "num_hidden_layers", "n_layer", "n_layers", default=0))
    n_ff = int(_config_get(cfg, "intermediate_size", "n_inner", "n_ff", default=4 * hidden))
    vocab = int(_config_get(cfg, "vocab_size", "vocab", default=0))
    model_type = str(_config_get(cfg, "model_type", "arch", default="unknown"))
    tied = bool(_config_get(cfg, "tie_word_embeddings", "tied_embeddings", default=True))
    gated = bool(cfg.get("gated_mlp", model_type not in ("gpt_neox", "gpt2", "gptj", "opt", "bloom", "falcon")))
    n_params = int(cfg.get("n_params") or count_params(n_layers, hidden, n_heads, n_kv, head_dim, n_ff, vocab, tied, gated))
    swa = cfg.get("sliding_window")
    return ModelShape(
        name=name, arch=model_type, n_params=n_params, n_layers=n_layers, hidden=hidden, n_heads=n_heads,
        n_kv_heads=n_kv, head_dim=head_dim, n_ff=n_ff, vocab=vocab,
        context_length=int(_config_get(cfg, "max_position_embeddings", "context_length", default=2048)),
        embedding_params=vocab * hidden, output_params=0 if tied else vocab * hidden, gated_mlp=gated,
        sliding_window=int(swa) if swa else None,
        n_swa_layers=int(cfg.get("n_swa_layers") or (_swa_layers(model_type, n_layers) if swa else 0)),
        weight_format="config",
    )


# -- the formulas ----------------------------------------------------------------------------
def kv_cache_bytes(shape: ModelShape, n_ctx: int, *, bytes_per_el: int = 2, n_ubatch: int = LLAMACPP_UBATCH,
                   pad: int = 256) -> int:
    """KV cache: ``n_layers × 2 × n_kv_heads × head_dim × context × bytes`` (f16: 2 bytes).

    llama.cpp pads the context to a multiple of 256; sliding-window layers (Gemma) keep only
    ``window + n_ubatch`` positions.
    """
    ctx = -(-n_ctx // pad) * pad if pad else n_ctx
    full_layers = shape.n_layers - shape.n_swa_layers
    total = full_layers * shape.kv_dim * ctx * bytes_per_el
    if shape.n_swa_layers and shape.sliding_window:
        swa_ctx = min(ctx, -(-(shape.sliding_window + n_ubatch) // pad) * pad if pad else shape.sliding_window + n_ubatch)
        total += shape.n_swa_layers * shape.kv_dim * swa_ctx * bytes_per_el
    return int(total)


def llamacpp_compute_bytes(shape: ModelShape, n_ctx: int, n_ubatch: int = LLAMACPP_UBATCH,
                           flash_attn: bool = True) -> int:
    """llama.cpp compute memory at its peak: a full ``n_ubatch``-token batch at a full context.

    ggml reserves a worst-case buffer up front but the pages are touched only as the graph
    uses them, so what counts is what one batch really writes:

    * activations: ``4 · n_ubatch · (3·n_embd + 2·n_ff)`` bytes (f32 hidden states, gate/up);
    * attention without flash attention (llama-cpp-python's ``Llama`` default): the f32 scores
      ``n_ubatch × n_kv × n_heads`` plus their f16 copy in the CPU work buffer, 6 bytes each —
      this term grows as the context fills;
    * with flash attention (llmlab's backend: llama.cpp's "auto" turns it on for the CPU) only
      the f16 mask ``n_ubatch × n_kv`` remains;
    * a fixed few MiB for weight-format conversion and thread scratch.
    """
    nu = min(n_ubatch, n_ctx)
    ctx = -(-n_ctx // 256) * 256
    act = 4 * nu * (3 * shape.hidden + 2 * shape.n_ff)
    attn = 2 * nu * ctx if flash_attn else 6 * nu * ctx * shape.n_heads
    return int(LLAMACPP_COMPUTE_FIXED + act + attn)


def llamacpp_overhead_bytes(shape: ModelShape) -> int:
    """Runtime memory besides the buffers: vocabulary tables, thread pool, graph metadata."""
    return int(LLAMACPP_OVERHEAD_FIXED + LLAMACPP_OVERHEAD_PER_VOCAB * shape.vocab)


def gguf_quant_bytes(shape: ModelShape, quant: str) -> int:
    """Weights after ``llama-quantize`` to ``quant``: embedding/output matrices at their own bpw, the rest at the mix's."""
    q = normalize_quant(quant)
    bulk, outbpw = GGUF_QUANT_BPW[q]
    tied_out = shape.output_params == 0
    emb_bpw = outbpw if tied_out else bulk  # llama.cpp treats a tied embedding as the output matrix
    bits = shape.matrix_params * bulk + shape.embedding_params * emb_bpw + shape.output_params * outbpw
    return int(bits / 8)


def normalize_quant(quant: str) -> str:
    q = quant.strip().lower().replace("-", "_")
    if q not in GGUF_QUANT_BPW:
        raise InvalidParameterError(
            f"unknown GGUF quantization type {quant!r}; valid: {', '.join(sorted(GGUF_QUANT_BPW))}")
    return q


def bnb_weight_bytes(shape: ModelShape, load_in: str, compute_bytes: int = 2) -> int:
    """bitsandbytes weights: linear layers quantized, embeddings and lm_head kept in 16-bit.

    * 4-bit NF4 with double quantization (what llmlab's ``--load-in 4bit`` uses): 0.5 byte per
      weight + an 8-bit absmax per 64-weight block + an fp32 scale per 256 blocks
      ≈ 0.5159 byte per weight.
    * 8-bit (LLM.int8): 1 byte per weight + an fp32 scale per output row (negligible).
    """
    if load_in == "4bit":
        per = 0.5 + 1 / 64 + 4 / (64 * 256)
    elif load_in == "8bit":
        per = 1.0
    else:
        raise InvalidParameterError(f"--load-in must be one of {', '.join(LOAD_IN)}, got {load_in!r}")
    kept = (shape.embedding_params + shape.output_params) * compute_bytes
    return int(shape.matrix_params * per + kept)


def lora_params(shape: ModelShape, rank: int = 16) -> int:
    """LoRA adds ``rank × (d_in + d_out)`` parameters to each adapted matrix.

    llmlab adapts every attention and MLP matrix of every layer (q, k, v, o, gate, up, down).
    """
    q_out = shape.n_heads * shape.head_dim
    kv_out = shape.n_kv_heads * shape.head_dim
    attn = (shape.hidden + q_out) + 2 * (shape.hidden + kv_out) + (q_out + shape.hidden)
    mlp = (3 if shape.gated_mlp else 2) * (shape.hidden + shape.n_ff)
    return int(shape.n_layers * rank * (attn + mlp))


def activation_bytes(shape: ModelShape, batch_size: int, seq_len: int, *, act_bytes: int = 2,
                     gradient_checkpointing: bool = False) -> int:
    """Activations kept for the backward pass.

    Korthikanti et al. (2022) count ``s·b·h·34`` bytes per layer for a GPT block with a 4h MLP
    in 16-bit (attention scores excluded, as SDPA/flash attention does not store them). We
    generalise the MLP part to the real width: ``s·b·(18·h + 4·n_ff)`` for a 2-matrix MLP and
    ``s·b·(18·h + 6·n_ff)`` for a gated one, scaled by ``act_bytes / 2``. With gradient
    checkpointing only each layer's input (``2·s·b·h``) is kept, plus one layer recomputed.
    The logits add ``2 × b·s·vocab × 4`` bytes (fp32 logits and their gradient).
    """
    sbh = seq_len * batch_size
    per_layer = sbh * (18 * shape.hidden + (6 if shape.gated_mlp else 4) * shape.n_ff) * act_bytes // 2
    if gradient_checkpointing:
        layers = shape.n_layers * sbh * shape.hidden * act_bytes + per_layer
    else:
        layers = shape.n_layers * per_layer
    logits = 2 * sbh * shape.vocab * 4
    return int(layers + logits)


# -- the estimate ------------------------------------------------------------------------------
def default_context(shape: ModelShape, settings: Settings | None = None) -> int:
    """The context llmlab uses for a local model: the configured one, else min(model's, 4096)."""
    if settings is not None and settings.context_length:
        return int(settings.context_length)
    return int(min(shape.context_length or DEFAULT_MAX_CTX, DEFAULT_MAX_CTX))


def estimate_fit(model: str, *, settings: Settings | None = None, load_in: str | None = None, quant: str | None = None,
                 context: int | None = None, train: str | None = None, batch_size: int = 1, seq_len: int | None = None,
                 lora_rank: int = 16, gradient_checkpointing: bool | None = None,
                 machine: Machine | None = None, flash_attn: bool = True) -> FitReport:
    """Estimate the memory ``model`` needs (nothing is loaded) and whether it fits this machine.

    ``model`` is anything ``--model`` accepts that has local metadata (bundled name, GGUF file,
    Hugging Face folder, cached repo id) or a curated catalog name (its recorded architecture).
    """
    settings = settings or load_settings()
    shape = locate_shape(model, settings, quant=quant, want_hf=bool(load_in or train))
    if quant and shape.weight_format == f"gguf {normalize_quant(quant).upper()}" and shape.path is None:
        quant = None  # a catalog file of exactly that quantization: its published size is the weights
    return estimate_for_shape(shape, settings=settings, load_in=load_in, quant=quant, context=context, train=train,
                              batch_size=batch_size, seq_len=seq_len, lora_rank=lora_rank,
                              gradient_checkpointing=gradient_checkpointing, machine=machine, flash_attn=flash_attn)


def estimate_for_shape(shape: ModelShape, *, settings: Settings | None = None, load_in: str | None = None,
                       quant: str | None = None, context: int | None = None, train: str | None = None,
                       batch_size: int = 1, seq_len: int | None = None, lora_rank: int = 16,
                       gradient_checkpointing: bool | None = None, machine: Machine | None = None,
                       weight_bytes_override: int | None = None, flash_attn: bool = True) -> FitReport:
    """:func:`estimate_fit` for a shape already in hand (the catalog uses this)."""
    if load_in is not None and load_in not in LOAD_IN:
        raise InvalidParameterError(f"--load-in must be one of {', '.join(LOAD_IN)}, got {load_in!r}")
    if train is not None and train not in TRAIN_MODES:
        raise InvalidParameterError(f"--train must be one of {', '.join(TRAIN_MODES)}, got {train!r}")
    if load_in and quant:
        raise InvalidParameterError("--load-in (bitsandbytes, transformers) and --quant (GGUF, llama.cpp) exclude each other")
    if context is not None and context < 1:
        raise InvalidParameterError(f"--context must be ≥ 1, got {context}")
    if batch_size < 1:
        raise InvalidParameterError(f"--batch-size must be ≥ 1, got {batch_size}")
    is_gguf = shape.weight_format.startswith("gguf")
    if load_in and is_gguf and shape.weight_bytes is not None and train is None:
        raise InvalidParameterError(
            "--load-in applies to Hugging Face (transformers) models; a GGUF file is already quantized — "
            "use --quant to estimate another GGUF quantization")
    machine = machine or machine_resources(probe_gpu=True)
    n_ctx = int(context or default_context(shape, settings))
    if train:
        return _estimate_training(shape, train, machine, batch_size=batch_size, seq_len=seq_len or min(n_ctx, 512),
                                  lora_rank=lora_rank, gradient_checkpointing=gradient_checkpointing, load_in=load_in)
    if load_in or (not is_gguf and not quant):
        return _estimate_transformers(shape, n_ctx, machine, load_in=load_in)
    return _estimate_llamacpp(shape, n_ctx, machine, quant=quant, weight_bytes_override=weight_bytes_override,
                              flash_attn=flash_attn)


def _estimate_llamacpp(shape: ModelShape, n_ctx: int, machine: Machine, quant: str | None,
                       weight_bytes_override: int | None = None, flash_attn: bool = True) -> FitReport:
    if quant:
        wbytes, wdesc = gguf_quant_bytes(shape, quant), f"gguf {normalize_quant(quant).upper()} (estimated)"
        wnote = f"{shape.n_params:,} parameters at {normalize_quant(quant).upper()} bits per weight"
    elif weight_bytes_override is not None:
        wbytes, wdesc, wnote = weight_bytes_override, shape.weight_format, "the file's size"
    else:
        wbytes, wdesc, wnote = int(shape.weight_bytes or 0), shape.weight_format, "tensor sizes from the GGUF header (memory-mapped)"
    comps = [
        Component("weights", wbytes, wnote),
        Component("kv_cache", kv_cache_bytes(shape, n_ctx),
                  f"{shape.n_layers} layers × 2 × {shape.n_kv_heads} KV heads × {shape.head_dim} × {n_ctx} tokens × 2 bytes (f16)"),
        Component("compute_buffer", llamacpp_compute_bytes(shape, n_ctx, flash_attn=flash_attn),
                  f"a {min(LLAMACPP_UBATCH, n_ctx)}-token batch at a full context, flash attention "
                  + ("on" if flash_attn else "off")),
        Component("runtime_overhead", llamacpp_overhead_bytes(shape), "vocabulary tables, threads, graph metadata"),
    ]
    total = sum(c.bytes for c in comps)
    at_start = comps[0].bytes + comps[1].bytes + comps[3].bytes + LLAMACPP_START_COMPUTE
    fits_ram = total <= machine.ram_available
    verdict = (f"{shape.name} on llama.cpp (CPU) with a {n_ctx}-token context needs about {gib(total)} GiB of RAM; "
               + (f"it fits ({gib(machine.ram_available)} GiB available)." if fits_ram
                  else f"it does NOT fit ({gib(machine.ram_available)} GiB available) — try a smaller --quant or --context."))
    return FitReport(model=shape.name, runtime="llama.cpp", device="cpu", mode="inference", weights=wdesc, context=n_ctx,
                     n_params=shape.n_params, components=comps, machine=machine, fits_ram=fits_ram, fits_gpu=None,
                     verdict=verdict, at_start_bytes=at_start, assumptions=[
                         "weights are memory-mapped with MAP_POPULATE: resident from the start",
                         f"KV cache in f16, context padded to 256, n_ubatch={LLAMACPP_UBATCH}",
                         "compute memory grows as the context fills; total is the full-context peak"])


def _dtype_bytes(shape: ModelShape) -> int:
    fmt = shape.weight_format.split()[-1] if shape.weight_format else ""
    return DTYPE_BYTES.get(fmt, 2) if not shape.weight_format.startswith("gguf") else 4


def _estimate_transformers(shape: ModelShape, n_ctx: int, machine: Machine, load_in: str | None) -> FitReport:
    if load_in:
        wbytes = bnb_weight_bytes(shape, load_in)
        wdesc = "nf4 4-bit (bitsandbytes, double quant)" if load_in == "4bit" else "int8 (bitsandbytes LLM.int8)"
        el = 2
        device = "cuda"
    else:
        el = _dtype_bytes(shape)
        wbytes = int(shape.weight_bytes) if shape.weight_bytes and not shape.weight_format.startswith("gguf") \
            else shape.n_params * el
        wdesc = shape.weight_format if not shape.weight_format.startswith("gguf") else "float32 (dequantized from GGUF)"
        device = "cpu or cuda"
    kv = kv_cache_bytes(shape, n_ctx, bytes_per_el=el, pad=0)
    work = n_ctx * (4 * shape.hidden + 3 * shape.n_ff) * el + 4 * shape.vocab
    comps = [
        Component("weights", wbytes, wdesc),
        Component("kv_cache", kv, f"dynamic cache at {n_ctx} tokens, {el}-byte elements"),
        Component("activations", work, "prefill working set of one layer + last-token logits"),
        Component("runtime_overhead", CUDA_CONTEXT if device == "cuda" else TORCH_CPU_OVERHEAD,
                  "CUDA context" if device == "cuda" else "torch runtime"),
    ]
    total = sum(c.bytes for c in comps)
    fits_gpu = None if machine.gpu_total is None else total <= (machine.gpu_free or machine.gpu_total)
    fits_ram = None if device == "cuda" else total <= machine.ram_available
    if device == "cuda":
        where = ("no CUDA GPU is visible here, and bitsandbytes needs one" if fits_gpu is None
                 else f"it {'fits' if fits_gpu else 'does NOT fit'} this GPU ({gib(machine.gpu_free or 0)} GiB free)")
    else:
        parts = [f"{'fits' if fits_ram else 'does NOT fit'} in RAM ({gib(machine.ram_available)} GiB available)"]
        if fits_gpu is not None:
            parts.append(f"{'fits' if fits_gpu else 'does NOT fit'} on the GPU ({gib(machine.gpu_free or 0)} GiB free)")
        where = "it " + " and ".join(parts)
    verdict = f"{shape.name} on transformers ({wdesc}) with a {n_ctx}-token context needs about {gib(total)} GiB; {where}."
    return FitReport(model=shape.name, runtime="transformers", device=device, mode="inference", weights=wdesc,
                     context=n_ctx, n_params=shape.n_params, components=comps, machine=machine, fits_ram=fits_ram,
                     fits_gpu=fits_gpu, verdict=verdict,
                     assumptions=["embeddings and lm_head stay 16-bit under bitsandbytes" if load_in else
                                  "weights in the checkpoint's dtype"])


def _estimate_training(shape: ModelShape, mode: str, machine: Machine, *, batch_size: int, seq_len: int,
                       lora_rank: int, gradient_checkpointing: bool | None, load_in: str | None) -> FitReport:
    if gradient_checkpointing is None:
        gradient_checkpointing = mode == "qlora"  # prepare_model_for_kbit_training turns it on
    is_gguf = shape.weight_format.startswith("gguf")
    el = 4 if is_gguf else _dtype_bytes(shape)  # GGUF weights are dequantized to float32
    comps: list[Component] = []
    assumptions = [f"AdamW: two fp32 states (m, v) per trainable parameter; batch {batch_size} × {seq_len} tokens",
                   "gradient checkpointing " + ("on" if gradient_checkpointing else "off")]
    if mode == "full":
        trainable = shape.n_params
        comps.append(Component("weights", shape.n_params * el, f"{el}-byte weights, all trainable"))
        comps.append(Component("gradients", shape.n_params * el, "one gradient per weight, same dtype"))
        if el < 4:
            comps.append(Component("master_weights", shape.n_params * 4, "fp32 copy for mixed precision"))
        comps.append(Component("optimizer_states", shape.n_params * 8, "AdamW m and v in fp32"))
        device = "cpu or cuda"
    else:
        trainable = lora_params(shape, lora_rank)
        if mode == "qlora" or load_in == "4bit":
            comps.append(Component("weights", bnb_weight_bytes(shape, "4bit"), "frozen base in NF4 (bitsandbytes)"))
            device = "cuda"
        elif load_in == "8bit":
            comps.append(Component("weights", bnb_weight_bytes(shape, "8bit"), "frozen base in int8 (bitsandbytes)"))
            device = "cuda"
        else:
            comps.append(Component("weights", shape.n_params * el, f"frozen base, {el}-byte weights"))
            device = "cpu or cuda"
        comps.append(Component("lora_weights", trainable * 4, f"rank {lora_rank} adapters on every attention/MLP matrix (fp32)"))
        comps.append(Component("gradients", trainable * 4, "adapter gradients (fp32)"))
        comps.append(Component("optimizer_states", trainable * 8, "AdamW m and v in fp32"))
        assumptions.append(f"LoRA rank {lora_rank} on every attention and MLP matrix")
    act_el = 2 if (el <= 2 or device == "cuda") else 4
    comps.append(Component("activations", activation_bytes(shape, batch_size, seq_len, act_bytes=act_el,
                                                           gradient_checkpointing=gradient_checkpointing),
                           f"batch {batch_size} × {seq_len} tokens, {act_el}-byte activations"))
    comps.append(Component("runtime_overhead", CUDA_CONTEXT if device == "cuda" else TORCH_CPU_OVERHEAD,
                           "CUDA context" if device == "cuda" else "torch runtime"))
    total = sum(c.bytes for c in comps)
    fits_gpu = None if machine.gpu_total is None else total <= (machine.gpu_free or machine.gpu_total)
    fits_ram = None if device == "cuda" else total <= machine.ram_available
    bits = []
    if fits_ram is not None:
        bits.append(f"{'fits' if fits_ram else 'does NOT fit'} in RAM ({gib(machine.ram_available)} GiB available)")
    if fits_gpu is not None:
        bits.append(f"{'fits' if fits_gpu else 'does NOT fit'} on the GPU ({gib(machine.gpu_free or 0)} GiB free)")
    elif device == "cuda":
        bits.append("needs a CUDA GPU, none is visible here")
    verdict = (f"{mode} fine-tuning of {shape.name} ({trainable:,} trainable parameters) needs about {gib(total)} GiB; "
               f"it {' and '.join(bits)}.")
    return FitReport(model=shape.name, runtime="transformers", device=device, mode=mode,
                     weights=comps[0].note, context=seq_len, n_params=shape.n_params, components=comps, machine=machine,
                     fits_ram=fits_ram, fits_gpu=fits_gpu, verdict=verdict, batch_size=batch_size, seq_len=seq_len,
                     trainable_params=trainable, assumptions=assumptions)


# -- finding a model's metadata ------------------------------------------------------------------
def locate_shape(model: str, settings: Settings, quant: str | None = None, want_hf: bool = False) -> ModelShape:
    """Find metadata for ``model`` without loading it: a file, a folder, the HF cache or the catalog.

    A catalog model that is not downloaded yet is described by its recorded architecture; its
    GGUF form (the file of ``quant``, else the default quantization) unless ``want_hf``.
    """
    from .spec import BUNDLED, bundled_path, cached_repo_snapshot

    for api in settings.api_models:
        if api.name == model:
            raise InvalidParameterError(f"{model!r} is an API model: it runs on a remote server, nothing to fit here")
    if model.startswith("openai:"):
        raise InvalidParameterError(f"{model!r} is an API model: it runs on a remote server, nothing to fit here")
    if model in BUNDLED:
        return shape_from_gguf(bundled_path(model), name=model)
    p = Path(model).expanduser()
    if p.exists():
        return _shape_for_path(p, model)
    from . import catalog

    entry, name_quant = catalog.find(model)
    if entry is not None:
        q = name_quant or (normalize_quant(quant) if quant else None)
        local = catalog.cached_path(entry, q, prefer="hf" if want_hf else None)
        if local is not None and (local.is_dir() == want_hf or not want_hf):
            return _shape_for_path(local, model)
        shape = catalog.shape_of(entry, q, form="hf" if want_hf else None)
        shape.name = model
        return shape
    repo, _, file = model.partition(":")
    parts = repo.split("/")
    if len(parts) == 2 and all(parts):
        snap = cached_repo_snapshot(repo)
        if snap is not None:
            return _shape_for_path(snap / file if file else snap, model)
        entry = catalog.find_repo(repo)
        if entry is not None:
            form = "gguf" if entry.gguf is not None and entry.gguf.repo == repo and not want_hf else "hf"
            shape = catalog.shape_of(entry, quant and normalize_quant(quant), form=form)
            shape.name = model
            return shape
        raise ModelNotFoundError(
            f"{repo!r} is not in the local Hugging Face cache, and fit needs its metadata. "
            f"Download it first (llmlab models pull {model}) or name a catalog model (llmlab models list --catalog)")
    raise ModelNotFoundError(f"unknown model {model!r}: give a bundled or catalog name, a GGUF file, a model folder "
                             f"or a cached repo id. See: llmlab models list")


def _shape_for_path(p: Path, name: str) -> ModelShape:
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise ModelNotFoundError(f"{p} is not a GGUF file")
        return shape_from_gguf(p, name=name)
    if (p / "config.json").exists():
        return shape_from_hf_folder(p, name=name)
    ggufs = sorted(p.glob("*.gguf"))
    if len(ggufs) == 1:
        return shape_from_gguf(ggufs[0], name=name)
    if ggufs:
        raise ModelNotFoundError(f"{p} holds several GGUF files ({', '.join(g.name for g in ggufs)}); name one as REPO:FILE")
    raise ModelNotFoundError(f"{p} is neither a GGUF file nor a Hugging Face model folder")
