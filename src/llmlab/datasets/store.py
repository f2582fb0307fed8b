"""Where datasets live: bundled ones inside the package, pulled ones under ``$LLMLAB_HOME/datasets``.

``path(name)`` is the folder the rest of the lab reads (``rag ingest``, ``rag eval``, ``eval``,
``finetune``); ``describe(name)`` is what ``datasets list``/``info`` show, computed without
downloading anything.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..errors import DatasetNotFoundError
from . import catalog
from .catalog import DatasetEntry

MANIFEST = "dataset.json"  # written last by pull: its presence means "complete"


@dataclass
class DatasetInfo:
    name: str
    kind: str
    bundled: bool
    licence: str
    licence_url: str
    source: str
    size: int | None  # bytes: on disk when available, else the download size
    description: str = ""
    available: bool = False  # usable now (bundled and present, or pulled)
    path: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # role -> path inside the set
    repo: str | None = None
    revision: str | None = None
    needs_licence_acceptance: bool = False
    download: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bundled_root() -> Path:
    """The folder of the bundled sets, as a real filesystem path.

    The package is installed as files (pip, editable or wheel), so ``resources.files`` is a
    real directory; a zip import would not be, and is refused with a clear message.
    """
    root = resources.files("llmlab.datasets").joinpath("bundled")
    if not isinstance(root, Path):  # pragma: no cover - llmlab is never zip-imported
        raise DatasetNotFoundError("llmlab is imported from an archive; install it as files to use bundled datasets")
    return root


def pulled_root(settings: Settings | None = None) -> Path:
    return (settings or load_settings()).home / "datasets"


def _folder(entry: DatasetEntry, settings: Settings | None) -> Path:
    return bundled_root() / entry.name if entry.bundled else pulled_root(settings) / entry.name


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _pulled_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def describe(name: str, settings: Settings | None = None) -> DatasetInfo:
    entry = catalog.find(name)
    folder = _folder(entry, settings)
    if entry.bundled:
        available = folder.is_dir() and all((folder / f).exists() for f in entry.entry.values())
        files = dict(entry.entry)
    else:
        manifest = _pulled_manifest(folder)
        available = manifest is not None
        files = dict(manifest["files"]) if manifest else {}
    return DatasetInfo(
        name=entry.name, kind=entry.kind, bundled=entry.bundled, licence=entry.licence,
        licence_url=entry.licence_url, source=entry.source, description=entry.description,
        size=_size(folder) if available else entry.download_size, available=available,
        path=str(folder) if available else None, files={k: str(folder / v) for k, v in files.items()},
        repo=entry.repo, revision=entry.revision, needs_licence_acceptance=entry.needs_acceptance,
        download=[{"file": f.file, "size": f.size, "approx_size": f.approx_size, "sha256": f.sha256}
                  for f in entry.files])


def list_datasets(settings: Settings | None = None) -> list[DatasetInfo]:
    """Every catalog entry, bundled first, with what is available now."""
    return [describe(e.name, settings) for e in catalog.load_catalog()]


def path(name: str, settings: Settings | None = None) -> Path:
    """The folder of a usable dataset; a catalog set not yet pulled says how to get it."""
    entry = catalog.find(name)
    info = describe(name, settings)
    if not info.available:
        if entry.bundled:
            raise DatasetNotFoundError(f"bundled dataset {name!r} is missing from this install ({bundled_root()}); "
                                       f"reinstall llmlab")
        raise DatasetNotFoundError(f"dataset {name!r} is not pulled yet; get it with: llmlab datasets pull {name}"
                                   + (" --accept-licence" if entry.needs_acceptance else ""))
    return Path(info.path)  # type: ignore[arg-type]


def file(name: str, role: str, settings: Settings | None = None) -> Path:
    """One file (or folder) of a dataset by its role (``dev``, ``questions``, ``documents``, …)."""
    info = describe(name, settings)
    path(name, settings)  # the clear error when unavailable
    if role not in info.files:
        raise DatasetNotFoundError(f"dataset {name!r} has no {role!r}; it has: {', '.join(info.files)}")
    return Path(info.files[role])


@dataclass
class RemoveResult:
    name: str
    removed: list[str]
    freed_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def remove(name: str, settings: Settings | None = None) -> RemoveResult:
    """Delete a pulled dataset: its converted folder and its downloads in the Hugging Face cache."""
    from ..hub import hf_cache_dir

    entry = catalog.find(name)
    if entry.bundled:
        raise DatasetNotFoundError(f"{name!r} ships inside llmlab (bundled); there is nothing to remove")
    removed, freed = [], 0
    targets = [pulled_root(settings) / name, pulled_root(settings) / f".{name}.converting",
               hf_cache_dir() / ("datasets--" + str(entry.repo).replace("/", "--"))]
    for t in targets:
        if t.exists():
            freed += sum(p.stat().st_size for p in t.rglob("*") if p.is_file() and not p.is_symlink())
            shutil.rmtree(t)
            removed.append(str(t))
    if not removed:
        raise DatasetNotFoundError(f"dataset {name!r} is not pulled; nothing to remove")
    return RemoveResult(name=name, removed=removed, freed_bytes=freed)
