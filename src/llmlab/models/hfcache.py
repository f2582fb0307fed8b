"""Where the local Hugging Face cache lives and what it holds (paths only, nothing downloads).

The cache layout is ``models--ORG--NAME/snapshots/<revision>/…`` with ``refs/main`` naming the
current revision; ``HF_HUB_CACHE`` or ``HF_HOME`` move it, as in huggingface_hub.
"""
from __future__ import annotations

from pathlib import Path

from ..hub import hf_cache_dir  # noqa: F401 - one definition, in the core download module




def cached_repo_snapshot(repo_id: str) -> Path | None:
    """The newest snapshot folder of ``repo_id`` in the local Hugging Face cache, if any."""
    root = hf_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    snaps = root / "snapshots"
    if not snaps.is_dir():
        return None
    ref = root / "refs" / "main"
    if ref.exists():
        p = snaps / ref.read_text().strip()
        if p.is_dir():
            return p
    dirs = sorted((d for d in snaps.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
    return dirs[-1] if dirs else None


def snapshots(repo: str) -> list[Path]:
    """Snapshot folders of ``repo`` in the HF cache, the one ``refs/main`` points at first."""
    root = hf_cache_dir() / ("models--" + repo.replace("/", "--"))
    snaps = root / "snapshots"
    if not snaps.is_dir():
        return []
    dirs = sorted((d for d in snaps.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime, reverse=True)
    ref = root / "refs" / "main"
    if ref.exists():
        main = snaps / ref.read_text().strip()
        dirs.sort(key=lambda d: d != main)
    return dirs


def cached_file(repo: str, filename: str) -> Path | None:
    for snap in snapshots(repo):
        p = snap / filename
        if p.exists():
            return p
    return None
