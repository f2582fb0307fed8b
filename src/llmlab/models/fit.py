"""Will this model fit this machine? Memory estimates for a model *name*, made before anything loads.

:func:`estimate_fit` finds the model's metadata without loading it — a bundled model, a GGUF
file, a Hugging Face folder, a cached repo id or a curated catalog entry (:mod:`.catalog`) —
reads its shape (:mod:`.metadata`) and hands it to the estimator (:mod:`.memory`). The names
the estimator and the shape modules define are re-exported here for callers of ``models.fit``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..errors import InvalidParameterError, ModelNotFoundError
from . import catalog
from .catalog import CatalogEntry
from .hfcache import cached_repo_snapshot
from .memory import (CUDA_CONTEXT, LLAMACPP_UBATCH, LOAD_IN, TORCH_CPU_OVERHEAD, TORCH_TRAIN_OVERHEAD,  # noqa: F401
                     TRAIN_MODES, Component, backward_workspace_bytes, kept_activation_bytes,
                     FitReport, activation_bytes, bnb_weight_bytes, default_context, estimate_for_shape,
                     gguf_quant_bytes, kv_cache_bytes, layer_activation_bytes, llamacpp_compute_bytes,
                     llamacpp_overhead_bytes, lora_params, loss_bytes)
from .metadata import read_gguf_header, shape_from_config, shape_from_gguf, shape_from_hf_folder  # noqa: F401
from .shape import (DEFAULT_MAX_CTX, GGUF_QUANT_BPW, GiB, Machine, MiB, ModelShape, count_params, gib,  # noqa: F401
                    machine_resources, normalize_quant)
from .spec import BUNDLED, bundled_path

def estimate_fit(model: str, *, settings: Settings | None = None, load_in: str | None = None, quant: str | None = None,
                 context: int | None = None, train: str | None = None, batch_size: int = 1, seq_len: int | None = None,
                 lora_rank: int = 16, gradient_checkpointing: bool | None = None,
                 machine: Machine | None = None, flash_attn: bool = True, runtime: str | None = None,
                 device: str | None = None, lora_dropout: float = 0.05) -> FitReport:
    """Estimate the memory ``model`` needs (nothing is loaded) and whether it fits this machine.

    ``model`` is anything ``--model`` accepts that has local metadata (bundled name, GGUF file,
    Hugging Face folder, cached repo id) or a curated catalog name (its recorded architecture).
    """
    settings = settings or load_settings()
    shape = locate_shape(model, settings, quant=quant, want_hf=bool(load_in or train or runtime == "transformers"))
    if quant and shape.weight_format == f"gguf {normalize_quant(quant).upper()}" and shape.path is None:
        quant = None  # a catalog file of exactly that quantization: its published size is the weights
    return estimate_for_shape(shape, settings=settings, load_in=load_in, quant=quant, context=context, train=train,
                              batch_size=batch_size, seq_len=seq_len, lora_rank=lora_rank,
                              gradient_checkpointing=gradient_checkpointing, machine=machine, flash_attn=flash_attn,
                              runtime=runtime, device=device, lora_dropout=lora_dropout)


# -- finding a model's metadata ------------------------------------------------------------------
def locate_shape(model: str, settings: Settings, quant: str | None = None, want_hf: bool = False) -> ModelShape:
    """Find metadata for ``model`` without loading it: a file, a folder, the HF cache or the catalog.

    A catalog model that is not downloaded yet is described by its recorded architecture; its
    GGUF form (the file of ``quant``, else the default quantization) unless ``want_hf``.
    """
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


def memory_table(entry: CatalogEntry, context: int = 4096, machine: Machine | None = None) -> list[dict[str, Any]]:
    """Memory a catalog entry needs per form and quantization (nothing downloaded).

    GGUF rows use the published file size as the weights; the Hugging Face rows use the
    parameter count at 16-bit, and bitsandbytes 8-bit / 4-bit NF4 for ``--load-in``.
    """
    machine = machine or Machine(ram_total=0, ram_available=0)
    shape = catalog.shape_of(entry, form="hf")
    ctx = min(context, entry.context_length)
    rows: list[dict[str, Any]] = []
    if entry.gguf is not None:
        for f in entry.gguf.files:
            r = estimate_for_shape(catalog.shape_of(entry, f.quant), context=ctx, machine=machine)
            rows.append({"form": "gguf", "quant": f.quant, "runtime": "llama.cpp", "device": "cpu",
                         "file": f.file, "file_bytes": f.size_bytes, "context": ctx, "bytes": r.total_bytes})
    if entry.hf is not None:
        for load_in, label in ((None, entry.hf.dtype), ("8bit", "8bit"), ("4bit", "4bit")):
            r = estimate_for_shape(shape, context=ctx, machine=machine, load_in=load_in)
            rows.append({"form": "hf", "quant": label, "runtime": "transformers",
                         "device": "cuda" if load_in else "cpu or cuda", "context": ctx, "bytes": r.total_bytes})
    return rows
