"""``llmlab models pull`` / ``rm``: verified, resumable downloads into the Hugging Face cache.

What to fetch (a catalog name, a quant, a repo id, a transformers model's files) is decided
here; the download itself — resume across interruptions, checksum verification, the Hub's
errors turned into llmlab errors — is :mod:`llmlab.hub`, shared with ``datasets pull``.
"""
from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import hub as hubmod
from ..errors import InvalidParameterError, LLMLabError, ModelNotFoundError
from ..hub import (ChecksumMismatchError, DownloadError, FileResult, GatedModelError, Hub, NetworkError,  # noqa: F401
                   NotEnoughDiskError, OfflineError, Target)
from . import catalog
from .spec import BUNDLED, hf_cache_dir

log = logging.getLogger(__name__)
_human = hubmod.human
#: top-level files a transformers model needs (weights are chosen separately)
HF_SUPPORT_FILES = re.compile(
    r"^(config\.json|generation_config\.json|tokenizer[^/]*|special_tokens_map\.json|vocab[^/]*|merges\.txt|"
    r"[^/]*\.model|chat_template\.(jinja|json)|added_tokens\.json|preprocessor_config\.json|"
    r"processor_config\.json|model\.safetensors\.index\.json|pytorch_model\.bin\.index\.json)$")


@dataclass
class PullPlan:
    """What ``pull`` will fetch: one repo, a list of files, and the catalog entry if any."""

    spec: str
    repo_id: str
    files: list[str]
    kind: str  # "gguf" | "hf"
    revision: str = "main"
    entry: catalog.CatalogEntry | None = None
    quant: str | None = None

    @property
    def target(self) -> Target:
        return Target(self.spec, self.repo_id, "model", self.revision)

    @property
    def model_name(self) -> str:
        """The name to pass to ``--model`` afterwards."""
        if self.entry is not None:
            default = self.entry.gguf.default_quant if self.entry.gguf else None
            if self.kind == "gguf" and self.quant and self.quant != default:
                return f"{self.entry.name}:{self.quant}"
            if self.kind == "gguf" or self.entry.gguf is None:
                return self.entry.name
        if self.kind == "gguf" and len(self.files) == 1 and ":" in self.spec:
            return f"{self.repo_id}:{self.files[0]}"
        return self.repo_id


@dataclass
class PullResult:
    model: str
    repo_id: str
    commit: str | None
    files: list[FileResult]
    path: str
    downloaded_bytes: int
    elapsed_s: float
    fit: dict[str, Any] | None = None
    catalog: str | None = None
    license: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["files"] = [asdict(f) for f in self.files]
        return d


# -- planning --------------------------------------------------------------------------------
def plan_pull(spec: str, quant: str | None = None, *, form: str | None = None) -> PullPlan:
    """Turn ``NAME``, ``NAME:QUANT``, ``REPO_ID`` or ``REPO_ID:FILE`` into a :class:`PullPlan`.

    Catalog names pick the entry's GGUF file for ``quant`` (its default otherwise); ``form="hf"``
    takes the Hugging Face (transformers) form instead. A bare repo id is listed on the Hub to
    choose its files: the one GGUF (or the ``quant`` one), or a transformers model's weights.
    """
    if spec in BUNDLED:
        raise InvalidParameterError(f"{spec!r} is bundled with llmlab (nothing to download)")
    entry, name_quant = catalog.find(spec)
    if entry is not None:
        q = (name_quant or quant or "").lower() or None
        if form == "hf" or entry.gguf is None:
            if entry.hf is None:
                raise InvalidParameterError(f"{entry.name} has no Hugging Face form in the catalog")
            if q:
                raise InvalidParameterError(f"{entry.name}'s Hugging Face form has no --quant; use --load-in when loading")
            return PullPlan(spec, entry.hf.repo, [], "hf", entry=entry)
        f = entry.gguf.file_for(q)
        return PullPlan(spec, entry.gguf.repo, [f.file], "gguf", entry=entry, quant=f.quant)
    repo, _, file = spec.partition(":")
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts):
        valid = ", ".join(m.name for m in catalog.load_catalog().models)
        raise ModelNotFoundError(f"{spec!r} is neither a catalog name ({valid}) nor a Hugging Face repo id (org/name)")
    entry = catalog.find_repo(repo)
    if file:
        kind = "gguf" if file.endswith(".gguf") else "hf"
        q = next((f.quant for f in entry.gguf.files if f.file == file), None) if entry and entry.gguf else None
        return PullPlan(spec, repo, [file], kind, entry=entry, quant=q)
    if entry is not None and entry.gguf is not None and entry.gguf.repo == repo:
        f = entry.gguf.file_for(quant)
        return PullPlan(spec, repo, [f.file], "gguf", entry=entry, quant=f.quant)
    return PullPlan(spec, repo, [], "auto", entry=entry, quant=quant)


def _choose_files(plan: PullPlan, siblings: list[str], quant: str | None) -> None:
    """Fill ``plan.files`` from a repo listing (GGUF repos: one file; else transformers files)."""
    ggufs = [s for s in siblings if s.endswith(".gguf") and "/" not in s]
    if plan.kind in ("auto", "gguf") and ggufs:
        if quant:
            q = quant.lower()
            matches = [g for g in ggufs if q in g.lower().replace("-", "_")]
            if not matches:
                raise ModelNotFoundError(f"{plan.repo_id} has no {quant} GGUF file; it has: {', '.join(ggufs)}")
            ggufs = matches
        if len(ggufs) > 1:
            raise InvalidParameterError(
                f"{plan.repo_id} holds several GGUF files ({', '.join(ggufs)}); choose one: "
                f"llmlab models pull {plan.repo_id}:{ggufs[0]} (or --quant TYPE)")
        plan.files, plan.kind = ggufs, "gguf"
        return
    top = [s for s in siblings if "/" not in s]
    weights = [s for s in top if s.endswith(".safetensors")]
    if not weights:
        weights = [s for s in top if re.match(r"^pytorch_model.*\.bin$", s)]
    if not weights:
        raise ModelNotFoundError(f"{plan.repo_id} has neither GGUF nor safetensors/pytorch weights: {', '.join(top)}")
    code = [s for s in top if s.endswith(".py")] if plan.entry is not None and plan.entry.hf is not None \
        and plan.entry.hf.trust_remote_code else []
    plan.files = sorted(set(weights + [s for s in top if HF_SUPPORT_FILES.match(s)] + code))
    plan.kind = "hf"


# -- pulling ---------------------------------------------------------------------------------
def pull(spec: str, *, quant: str | None = None, form: str | None = None, progress: bool = True,
         log_line: Callable[[str], None] | None = None, settings=None) -> PullResult:
    """Download a model into the HF cache (resuming, verifying), and say how to use it.

    ``log_line`` receives human-readable progress lines (the CLI sends them to stderr).
    """
    say = log_line or (lambda s: log.info(s))
    hub = hubmod.connect()
    plan = plan_pull(spec, quant, form=form)
    t0 = time.perf_counter()
    fit = _fit_before(plan, settings)
    if fit is not None:
        say(f"fit: {fit['verdict']}")
    if plan.entry is not None:
        _license_lines(plan, say)

    if hub.offline:
        return _offline_result(plan, hub, t0, fit)

    from huggingface_hub import HfApi

    if not plan.files:
        info = hubmod.call_hub(lambda: HfApi(endpoint=hub.endpoint).model_info(
            plan.repo_id, revision=plan.revision, files_metadata=False, token=hub.token), plan.target, hub)
        _choose_files(plan, [s.rfilename for s in (info.siblings or [])], quant)

    metas = [(f, hubmod.file_metadata(hub, plan.target, f)) for f in plan.files]
    hubmod.check_disk(hub, plan.target, metas)
    total = sum(m.size or 0 for _, m in metas)
    say(f"pulling {plan.repo_id}: {len(metas)} file(s), {_human(total)} from {hub.endpoint}")
    results = [hubmod.download(hub, plan.target, f, m, progress, say) for f, m in metas]
    elapsed = time.perf_counter() - t0
    got = sum(r.bytes - r.resumed_from for r in results if r.downloaded)
    if got:
        say(f"done: {_human(got)} in {elapsed:.1f} s ({_human(got / max(elapsed, 1e-6))}/s)")
    else:
        say("already in the cache; nothing downloaded")
    path = results[0].path if plan.kind == "gguf" else str(Path(results[0].path).parent)
    return PullResult(model=plan.model_name, repo_id=plan.repo_id, commit=metas[0][1].commit_hash, files=results,
                      path=path, downloaded_bytes=got, elapsed_s=round(elapsed, 3), fit=fit,
                      catalog=plan.entry.name if plan.entry else None,
                      license=plan.entry.license if plan.entry else None,
                      notes=[f"use it: llmlab chat --model {plan.model_name}"])


def _license_lines(plan: PullPlan, say: Callable[[str], None]) -> None:
    e = plan.entry
    assert e is not None
    say(f"licence: {e.license} ({e.license_url})")
    if e.license_note:
        say(f"note: {e.license_note}")


def _fit_before(plan: PullPlan, settings) -> dict[str, Any] | None:
    """The memory estimate shown before downloading (catalog models: from the recorded architecture)."""
    if plan.entry is None:
        return None
    from .fit import estimate_for_shape

    try:
        if plan.kind == "gguf":
            shape = catalog.shape_of(plan.entry, plan.quant)
            return estimate_for_shape(shape, settings=settings).to_dict()
        shape = catalog.shape_of(plan.entry, form="hf")
        return estimate_for_shape(shape, settings=settings).to_dict()
    except LLMLabError as e:  # an estimate must never block a download
        log.warning("no fit estimate: %s", e)
        return None


def _offline_result(plan: PullPlan, hub: Hub, t0: float, fit) -> PullResult:
    """HF_HUB_OFFLINE=1: succeed only when everything is already cached."""
    local = None
    if not plan.files:  # a whole repo: any snapshot that holds a model counts
        snap = next((s for s in catalog.snapshots(plan.repo_id)
                     if (s / "config.json").exists() or any(s.glob("*.gguf"))), None)
        if snap is not None:
            plan.files = sorted(f.name for f in snap.iterdir() if f.is_file())
    if plan.files:
        paths = [catalog.cached_file(plan.repo_id, f) for f in plan.files]
        if all(paths):
            local = paths
    if local is None:
        raise OfflineError(
            f"cannot download {plan.spec}: offline mode is on (HF_HUB_OFFLINE=1) and it is not in the cache "
            f"({hub.cache}). Unset HF_HUB_OFFLINE to download; models already pulled keep working offline.")
    files = [FileResult(file=f, bytes=p.stat().st_size, sha256=None, path=str(p), downloaded=False)
             for f, p in zip(plan.files, local)]
    path = files[0].path if plan.kind == "gguf" else str(Path(files[0].path).parent)
    return PullResult(model=plan.model_name, repo_id=plan.repo_id, commit=None, files=files, path=path,
                      downloaded_bytes=0, elapsed_s=round(time.perf_counter() - t0, 3), fit=fit,
                      catalog=plan.entry.name if plan.entry else None, notes=["offline: already in the cache"])


# -- removing --------------------------------------------------------------------------------
@dataclass
class RemoveResult:
    removed: list[str]
    freed_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def remove(name: str, quant: str | None = None) -> RemoveResult:
    """Delete a pulled model from the HF cache and report the space freed.

    ``NAME`` (catalog) or ``REPO_ID`` removes every cached revision of the repo(s) through
    huggingface_hub's cache API; ``NAME:QUANT``/``--quant`` or ``REPO_ID:FILE`` removes one file.
    """
    if name in BUNDLED:
        raise InvalidParameterError(f"{name!r} ships inside the {BUNDLED[name].package} package; "
                                    f"pip uninstall {BUNDLED[name].package.replace('_', '-')} removes it")
    if Path(name).expanduser().exists():
        raise InvalidParameterError(f"{name} is a local path; llmlab only removes models it pulled. Delete it yourself.")
    entry, name_quant = catalog.find(name)
    q = (name_quant or quant or "").lower() or None
    if entry is not None:
        if q:
            if entry.gguf is None:
                raise InvalidParameterError(f"{entry.name} has no GGUF form")
            return _remove_file(entry.gguf.repo, entry.gguf.file_for(q).file)
        repos = entry.repos
    else:
        repo, _, file = name.partition(":")
        if len(repo.split("/")) != 2:
            raise ModelNotFoundError(f"{name!r} is neither a catalog name nor a repo id (org/name)")
        if file:
            return _remove_file(repo, file)
        repos = [repo]
    return _remove_repos(repos, name)


def _remove_repos(repos: list[str], name: str) -> RemoveResult:
    from huggingface_hub import scan_cache_dir

    cache = hf_cache_dir()
    if not cache.is_dir():
        raise ModelNotFoundError(f"{name!r} is not in the Hugging Face cache ({cache}); nothing to remove")
    info = scan_cache_dir(cache)
    found = [r for r in info.repos if r.repo_type == "model" and r.repo_id in repos]
    removed, freed = [], 0
    revisions = [rev.commit_hash for r in found for rev in r.revisions]
    if revisions:
        strategy = info.delete_revisions(*revisions)
        freed += strategy.expected_freed_size
        strategy.execute()
        removed += [r.repo_id for r in found]
    for repo in repos:  # folders with only partial downloads (no snapshot yet)
        folder = cache / ("models--" + repo.replace("/", "--"))
        if folder.exists():
            freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())
            shutil.rmtree(folder)
            if repo not in removed:
                removed.append(repo)
    if not removed:
        raise ModelNotFoundError(f"{name!r} is not in the Hugging Face cache ({cache}); nothing to remove")
    return RemoveResult(removed=removed, freed_bytes=int(freed))


def _remove_file(repo: str, filename: str) -> RemoveResult:
    """Remove one file: its snapshot pointers and, when nothing else points at it, its blob."""
    storage = hf_cache_dir() / ("models--" + repo.replace("/", "--"))
    pointers = [s / filename for s in catalog.snapshots(repo) if (s / filename).exists() or (s / filename).is_symlink()]
    if not pointers:
        raise ModelNotFoundError(f"{repo}:{filename} is not in the Hugging Face cache; nothing to remove")
    blobs = {p.resolve() for p in pointers if p.is_symlink()}
    freed = 0
    for p in pointers:
        if not p.is_symlink():
            freed += p.stat().st_size
        p.unlink()
    still_used = {q.resolve() for s in catalog.snapshots(repo) for q in s.rglob("*") if q.is_symlink()}
    for b in blobs - still_used:
        if b.exists():
            freed += b.stat().st_size
            b.unlink()
    for snap in catalog.snapshots(repo):  # drop snapshots left empty
        if not any(snap.rglob("*")):
            snap.rmdir()
    blobs_dir = storage / "blobs"
    if not catalog.snapshots(repo) and not (blobs_dir.exists() and any(blobs_dir.iterdir())):
        shutil.rmtree(storage, ignore_errors=True)  # nothing left of the repo
    return RemoveResult(removed=[f"{repo}:{filename}"], freed_bytes=int(freed))

