"""The curated catalog of Korean-capable models (``data/catalog.yaml``), validated by pydantic.

A catalog entry names a model once (``qwen2.5-1.5b-instruct``) and records where its GGUF and
Hugging Face forms live, its licence, context length, chat template and architecture. The
architecture lets :mod:`.memory` compute memory needs per quantization without downloading
anything; ``models pull NAME`` downloads the entry's chosen file and ``--model NAME`` then
resolves to it.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError, InvalidParameterError, ModelNotFoundError
from .capabilities import BackendKind
from .hfcache import cached_file, hf_cache_dir, snapshots  # noqa: F401 - cached_file, snapshots: part of this API
from .shape import ModelShape, normalize_quant

CATALOG_PATH = Path(__file__).resolve().parent.parent / "data" / "catalog.yaml"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogFile(_Strict):
    quant: str
    file: str
    size_bytes: int = Field(gt=0)
    approx_size: bool = False  # the Hub listing gave a rounded size

    @field_validator("quant")
    @classmethod
    def _known_quant(cls, v: str) -> str:
        return normalize_quant(v)

    @field_validator("file")
    @classmethod
    def _gguf_file(cls, v: str) -> str:
        if not v.endswith(".gguf") or "/" in v:
            raise ValueError(f"{v!r} must be a .gguf file name at the top of the repo")
        return v


class GGUFSource(_Strict):
    repo: str
    default_quant: str
    files: list[CatalogFile] = Field(min_length=1)
    gated: bool = False

    @model_validator(mode="after")
    def _default_present(self) -> "GGUFSource":
        quants = [f.quant for f in self.files]
        if len(set(quants)) != len(quants):
            raise ValueError(f"{self.repo}: duplicate quantizations {quants}")
        if self.default_quant not in quants:
            raise ValueError(f"{self.repo}: default_quant {self.default_quant!r} is not among {quants}")
        return self

    def file_for(self, quant: str | None) -> CatalogFile:
        q = (quant or self.default_quant).lower()
        for f in self.files:
            if f.quant == q:
                return f
        raise InvalidParameterError(
            f"{self.repo} has no {q} file in the catalog; choose one of: {', '.join(f.quant for f in self.files)}")


class HFSource(_Strict):
    repo: str
    size_bytes: int = Field(gt=0)
    dtype: str = "bfloat16"
    gated: bool = False
    trust_remote_code: bool = False


class Architecture(_Strict):
    arch: str
    n_layers: int = Field(gt=0)
    hidden: int = Field(gt=0)
    n_heads: int = Field(gt=0)
    n_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    n_ff: int = Field(gt=0)
    vocab: int = Field(gt=0)
    tied_embeddings: bool
    gated_mlp: bool = True
    sliding_window: int | None = None
    n_swa_layers: int = 0


class CatalogEntry(_Strict):
    name: str
    family: str
    description: str
    params: int = Field(gt=0)
    license: str = Field(min_length=2)
    license_id: str = Field(min_length=2)  # the Hub's licence tag, e.g. apache-2.0, exaone
    license_url: str
    commercial_use: bool
    license_note: str = ""
    context_length: int = Field(gt=0)
    chat_template: str
    languages: list[str]
    korean: str = Field(min_length=10)
    arch: Architecture
    gguf: GGUFSource | None = None
    hf: HFSource | None = None
    sources: list[str] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"catalog name {v!r} must be lower-case letters, digits, '.' and '-'")
        return v

    @model_validator(mode="after")
    def _has_a_source(self) -> "CatalogEntry":
        if self.gguf is None and self.hf is None:
            raise ValueError(f"{self.name}: needs a gguf or an hf source")
        if not self.commercial_use and "NON-COMMERCIAL" not in self.license_note.upper():
            raise ValueError(f"{self.name}: a non-commercial licence must say NON-COMMERCIAL in license_note")
        return self

    @property
    def gated(self) -> bool:
        return bool((self.gguf and self.gguf.gated) or (self.hf and self.hf.gated))

    @property
    def repos(self) -> list[str]:
        return [s.repo for s in (self.gguf, self.hf) if s is not None]


class Catalog(_Strict):
    version: int
    models: list[CatalogEntry]

    @model_validator(mode="after")
    def _unique(self) -> "Catalog":
        seen: set[str] = set()
        for m in self.models:
            if m.name in seen:
                raise ValueError(f"duplicate catalog name {m.name!r}")
            seen.add(m.name)
        return self

    def get(self, name: str) -> CatalogEntry | None:
        return next((m for m in self.models if m.name == name), None)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a catalog file (the shipped one by default)."""
    if path is None:
        return _shipped()
    return _load(Path(path))


@functools.lru_cache(maxsize=1)
def _shipped() -> Catalog:
    return _load(CATALOG_PATH)


def _load(path: Path) -> Catalog:
    import yaml

    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Catalog.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise ConfigError(f"invalid model catalog {path}: {e}") from None


def find(name: str) -> tuple[CatalogEntry | None, str | None]:
    """``NAME`` or ``NAME:QUANT`` → (entry, quant); (None, None) when it is not a catalog name."""
    base, _, quant = name.partition(":")
    if "/" in base or not NAME_RE.match(base):
        return None, None
    entry = load_catalog().get(base)
    return (entry, quant.lower() or None) if entry is not None else (None, None)


def find_repo(repo: str) -> CatalogEntry | None:
    """The entry one of whose sources is ``repo``."""
    return next((m for m in load_catalog().models if repo in m.repos), None)


def cached_path(entry: CatalogEntry, quant: str | None = None, prefer: str | None = None) -> Path | None:
    """The local file (GGUF) or folder (HF) a pulled catalog model resolves to, if any.

    Without ``quant`` the default quantization wins, then any other pulled one, then the
    Hugging Face form. ``prefer="hf"`` puts the Hugging Face form first (the transformers backend).
    """
    def gguf_path() -> Path | None:
        if entry.gguf is None or (quant and quant not in {f.quant for f in entry.gguf.files}):
            return None
        files = [entry.gguf.file_for(quant)] if quant else (
            [entry.gguf.file_for(None)] + [f for f in entry.gguf.files if f.quant != entry.gguf.default_quant])
        for f in files:
            p = cached_file(entry.gguf.repo, f.file)
            if p is not None:
                return p
        return None

    def hf_path() -> Path | None:
        if entry.hf is None or quant:
            return None
        for snap in snapshots(entry.hf.repo):
            if (snap / "config.json").exists():
                return snap
        return None

    order = (hf_path, gguf_path) if prefer == "hf" else (gguf_path, hf_path)
    for fn in order:
        p = fn()
        if p is not None:
            return p
    return None


def resolve_name(name: str, backend: str | None = None) -> Path | None:
    """Where a catalog name points in the local cache; ``None`` if ``name`` is not a catalog name.

    Raises :class:`ModelNotFoundError` with the pull command when the model is not downloaded.
    """
    entry, quant = find(name)
    if entry is None:
        return None
    if quant:
        if entry.gguf is None:
            raise InvalidParameterError(f"{entry.name} has no GGUF form; name it without ':{quant}'")
        entry.gguf.file_for(quant)  # an unknown quantization is an error listing the valid ones
    p = cached_path(entry, quant, prefer="hf" if backend == BackendKind.TRANSFORMERS else None)
    if p is None:
        raise ModelNotFoundError(
            f"catalog model {name!r} is not downloaded yet ({hf_cache_dir()}). Get it with: llmlab models pull {name}")
    return p


def shape_of(entry: CatalogEntry, quant: str | None = None, form: str | None = None) -> ModelShape:
    """A :class:`~.shape.ModelShape` from the entry's recorded architecture.

    The GGUF form (unless ``form="hf"`` or there is none) carries the published size of the
    ``quant`` file (default quantization when omitted) as its weights.
    """
    a = entry.arch
    emb = a.vocab * a.hidden
    shape = ModelShape(
        name=entry.name, arch=a.arch, n_params=entry.params, n_layers=a.n_layers, hidden=a.hidden, n_heads=a.n_heads,
        n_kv_heads=a.n_kv_heads, head_dim=a.head_dim, n_ff=a.n_ff, vocab=a.vocab, context_length=entry.context_length,
        embedding_params=emb, output_params=0 if a.tied_embeddings else emb, gated_mlp=a.gated_mlp,
        sliding_window=a.sliding_window, n_swa_layers=a.n_swa_layers,
        weight_format=f"safetensors {'BF16' if entry.hf and entry.hf.dtype == 'bfloat16' else 'F16'}",
    )
    if entry.gguf is not None and form != "hf":
        q = (quant or entry.gguf.default_quant).lower()
        f = next((f for f in entry.gguf.files if f.quant == q), None)
        if f is not None:
            shape.weight_format, shape.weight_bytes = f"gguf {q.upper()}", f.size_bytes
        elif quant is None:  # pragma: no cover - default_quant is validated to exist
            raise InvalidParameterError(f"{entry.name} has no {q} file")
    return shape
