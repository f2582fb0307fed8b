"""``llmlab datasets pull``: fetch a catalog set's pinned files, verify them, convert them.

The download is :mod:`llmlab.hub` (resume across interruptions, the Hub's checksum, plus the
catalog's sha256 where recorded), into the Hugging Face cache as a ``dataset`` repo. The
converted files are written to a temporary folder and renamed into
``$LLMLAB_HOME/datasets/<name>/`` with ``dataset.json`` last, so a killed pull leaves either
nothing usable or a complete set — and the next call resumes the download.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import hub as hubmod
from ..config import Settings
from ..errors import DatasetNotFoundError, InvalidParameterError
from . import catalog
from .catalog import DatasetEntry
from .convert import CONVERTERS
from .store import MANIFEST, pulled_root

log = logging.getLogger(__name__)


class LicenceNotAcceptedError(InvalidParameterError):
    code = "licence_not_accepted"


@dataclass
class DatasetPullResult:
    name: str
    repo: str
    commit: str | None
    path: str
    files: dict[str, str]
    downloaded_bytes: int
    elapsed_s: float
    licence: str
    downloads: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def licence_lines(entry: DatasetEntry) -> list[str]:
    size = entry.download_size
    approx = any(f.approx_size for f in entry.files)
    lines = [f"{entry.name}: {entry.description}",
             f"source: {entry.source}",
             f"licence: {entry.licence} ({entry.licence_url})",
             f"download: {len(entry.files)} file(s), "
             f"{'about ' if approx else ''}{hubmod.human(size) if size is not None else 'size unknown'} "
             f"from {entry.repo}@{str(entry.revision)[:12]}"]
    if entry.needs_acceptance:
        why = "gated on the Hub" if entry.gated else "its licence restricts use (non-commercial or no-derivatives)"
        lines.append(f"note: {why}; read the licence before using it")
    return lines


def pull(name: str, *, accept_licence: bool = False, progress: bool = True, settings: Settings | None = None,
         log_line: Callable[[str], None] | None = None) -> DatasetPullResult:
    """Download, verify and convert catalog dataset ``name``; return where the lab's files are."""
    say = log_line or (lambda s: log.info(s))
    entry = catalog.find(name)
    if entry.bundled:
        raise InvalidParameterError(f"{name!r} is bundled with llmlab (nothing to download); "
                                    f"its files are at: llmlab datasets path {name}")
    for line in licence_lines(entry):
        say(line)
    if entry.needs_acceptance and not accept_licence:
        raise LicenceNotAcceptedError(
            f"{name} is {'gated' if entry.gated else 'under ' + entry.licence}: read {entry.licence_url} and, "
            f"if your use complies, run again with --accept-licence")
    t0 = time.perf_counter()
    hub = hubmod.connect()
    target = hubmod.Target(name, str(entry.repo), "dataset", str(entry.revision), not_found=DatasetNotFoundError)
    if hub.offline:
        raise hubmod.OfflineError(f"cannot download {name}: offline mode is on (HF_HUB_OFFLINE=1); unset it to pull")
    metas = [(f.file, hubmod.file_metadata(hub, target, f.file)) for f in entry.files]
    hubmod.check_disk(hub, target, metas, free_hint="llmlab datasets rm NAME")
    results = [hubmod.download(hub, target, f.file, m, progress, say, sha256=f.sha256)
               for f, (_, m) in zip(entry.files, metas)]
    got = sum(r.bytes - r.resumed_from for r in results if r.downloaded)
    local = {f.role: Path(r.path) for f, r in zip(entry.files, results)}
    out = _convert(entry, local, settings, say)
    commit = metas[0][1].commit_hash
    manifest = {"name": name, "kind": entry.kind, "repo": entry.repo, "revision": entry.revision, "commit": commit,
                "licence": entry.licence, "files": out["files"],
                "downloads": [{"file": r.file, "bytes": r.bytes, "sha256": r.sha256} for r in results]}
    folder = out["folder"]
    (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    elapsed = time.perf_counter() - t0
    say(f"ready: {folder}")
    return DatasetPullResult(name=name, repo=str(entry.repo), commit=commit, path=str(folder),
                             files={k: str(folder / v) for k, v in out["files"].items()}, downloaded_bytes=got,
                             elapsed_s=round(elapsed, 3), licence=entry.licence, downloads=manifest["downloads"])


def _convert(entry: DatasetEntry, local: dict[str, Path], settings: Settings | None,
             say: Callable[[str], None]) -> dict[str, Any]:
    """Convert into ``.<name>.converting`` and rename it into place (the manifest comes after)."""
    root = pulled_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{entry.name}.converting"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    fmt = entry.convert.get("format", "")
    say(f"converting to the lab's {entry.kind} format ({fmt})")
    try:
        files = CONVERTERS.get(fmt)(local, tmp, entry.convert)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = root / entry.name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return {"folder": final, "files": files}
