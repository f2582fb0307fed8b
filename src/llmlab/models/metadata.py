"""Reading a model's shape from metadata only: GGUF headers, ``config.json``, safetensors headers.

No tensor data is read: a GGUF header is parsed with ``struct`` and the ``gguf`` package's type
tables, a safetensors file by its JSON header, so a 10 GB model is measured in milliseconds.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, ModelNotFoundError
from .shape import DEFAULT_MAX_CTX, MiB, ModelShape, count_params

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
