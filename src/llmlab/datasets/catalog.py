"""The dataset catalog: bundled course sets and pinned public sets on the Hugging Face Hub.

Read from ``catalog.yaml`` beside this module; typed entries, validated once. An unknown
name is an error that lists the known ones.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from ..errors import ConfigError, DatasetNotFoundError

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
#: SPDX licence ids that need --accept-licence: non-commercial or no-derivatives terms
RESTRICTED_LICENCE = re.compile(r"(^|-)(NC|ND)(-|$)", re.IGNORECASE)
BUNDLED_LICENCE = "CC-BY-4.0"
BUNDLED_LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"
KINDS = ("rag", "sft", "summarize", "translate", "classify", "extract")


@dataclass(frozen=True)
class HubFile:
    file: str
    role: str
    size: int | None = None
    sha256: str | None = None
    approx_size: bool = False


@dataclass(frozen=True)
class DatasetEntry:
    """One named dataset: bundled (``repo`` is None) or pulled from the Hub."""

    name: str
    kind: str
    description: str
    bundled: bool
    licence: str
    licence_url: str
    source: str
    entry: dict[str, str] = field(default_factory=dict)  # role -> file/folder inside the set
    repo: str | None = None
    revision: str | None = None
    files: tuple[HubFile, ...] = ()
    convert: dict[str, Any] = field(default_factory=dict)
    gated: bool = False

    @property
    def needs_acceptance(self) -> bool:
        """Gated, non-commercial or no-derivatives: ``pull`` wants ``--accept-licence``."""
        return self.gated or bool(RESTRICTED_LICENCE.search(self.licence))

    @property
    def download_size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if not sizes or None in sizes else sum(sizes)  # type: ignore[arg-type]


def _bundled(raw: dict[str, Any]) -> DatasetEntry:
    return DatasetEntry(name=raw["name"], kind=raw["kind"], description=raw.get("description", ""), bundled=True,
                        licence=BUNDLED_LICENCE, licence_url=BUNDLED_LICENCE_URL,
                        source="llmlab course (written for the lab; see its DATASHEET.md)",
                        entry=dict(raw.get("entry") or {}))


def _hub(raw: dict[str, Any]) -> DatasetEntry:
    name = raw.get("name", "?")
    rev = str(raw.get("revision", ""))
    if not COMMIT_RE.match(rev):
        raise ConfigError(f"datasets catalog: {name}: revision must be a pinned 40-hex commit, got {rev!r}")
    files = []
    for f in raw.get("files") or []:
        sha = f.get("sha256")
        if sha is not None and not SHA256_RE.match(str(sha)):
            raise ConfigError(f"datasets catalog: {name}: {f.get('file')}: sha256 is not 64 hex digits")
        files.append(HubFile(file=f["file"], role=f.get("role", "rows"), size=f.get("size"), sha256=sha,
                             approx_size=bool(f.get("approx_size", False))))
    if not files:
        raise ConfigError(f"datasets catalog: {name}: no files")
    return DatasetEntry(name=name, kind=raw["kind"], description=raw.get("description", ""), bundled=False,
                        licence=raw["licence"], licence_url=raw.get("licence_url", ""), source=raw.get("source", ""),
                        repo=raw["repo"], revision=rev, files=tuple(files), convert=dict(raw.get("convert") or {}),
                        gated=bool(raw.get("gated", False)))


def parse_catalog(data: dict[str, Any]) -> list[DatasetEntry]:
    """Entries of a catalog document; a duplicate name or an unknown kind is a ConfigError."""
    entries = [_bundled(r) for r in data.get("bundled") or []] + [_hub(r) for r in data.get("hub") or []]
    seen: set[str] = set()
    for e in entries:
        if e.kind not in KINDS:
            raise ConfigError(f"datasets catalog: {e.name}: kind {e.kind!r} is not one of {', '.join(KINDS)}")
        if e.name in seen:
            raise ConfigError(f"datasets catalog: duplicate name {e.name!r}")
        seen.add(e.name)
    return entries


@lru_cache(maxsize=1)
def load_catalog() -> tuple[DatasetEntry, ...]:
    import yaml

    text = resources.files("llmlab.datasets").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return tuple(parse_catalog(yaml.safe_load(text)))


def find(name: str) -> DatasetEntry:
    """The entry called ``name``; an unknown name lists the known ones."""
    for e in load_catalog():
        if e.name == name:
            return e
    known = ", ".join(e.name for e in load_catalog())
    raise DatasetNotFoundError(f"unknown dataset {name!r}; known datasets: {known} (llmlab datasets list)")
