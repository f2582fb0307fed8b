"""Verified, resumable downloads from a Hugging Face Hub into its cache — models and datasets.

``models pull`` and ``datasets pull`` both come through here. Downloads go through
``huggingface_hub`` (URL layout, ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE``, error
types, progress bars, cache layout) with two things added, because ``hf_hub_download``
(2.x) no longer keeps partial files between runs:

* **resume across interruptions**: bytes land in ``blobs/<etag>.incomplete`` and a later run
  continues from there with an HTTP ``Range`` request (``http_get(resume_size=…)``);
* **checksum verification**: the Hub reports an LFS file's sha256 as its ``X-Linked-Etag``
  (a git blob sha1 for small files); the finished file is hashed and, on a mismatch, deleted
  with a clear error. A caller may also demand a sha256 it recorded itself (a catalog pin).

Once the blob is verified, ``hf_hub_download`` writes the snapshot pointer and ``refs/``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from .diskspace import free_bytes
from .errors import LLMLabError, MissingDependencyError, ModelNotFoundError

log = logging.getLogger(__name__)

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
DISK_MARGIN = 64 * 1024**2  # keep this much free beyond the download itself


class DownloadError(LLMLabError):
    code = "download_error"


class NetworkError(DownloadError):
    code = "network_error"


class OfflineError(DownloadError):
    code = "offline"


class GatedModelError(DownloadError):
    """A gated repo (model or dataset) and no token with access to it."""

    code = "gated_model"


class NotEnoughDiskError(DownloadError):
    code = "not_enough_disk"


class ChecksumMismatchError(DownloadError):
    code = "checksum_mismatch"


@dataclass
class Hub:
    """The Hub connection settings, read when a command runs (not at import)."""

    endpoint: str
    token: str | None
    cache: Path
    offline: bool


@dataclass
class Target:
    """One repo on the Hub: what to name in messages and where its files live."""

    spec: str  # what the user typed, for messages
    repo_id: str
    repo_type: str = "model"  # "model" | "dataset"
    revision: str = "main"
    not_found: type[LLMLabError] = ModelNotFoundError

    @property
    def noun(self) -> str:
        return self.repo_type

    @property
    def page(self) -> str:
        return self.repo_id if self.repo_type == "model" else f"datasets/{self.repo_id}"


@dataclass
class FileResult:
    file: str
    bytes: int
    sha256: str | None
    path: str
    downloaded: bool  # False when it was already in the cache
    resumed_from: int = 0


def hf_cache_dir() -> Path:
    """huggingface_hub's cache folder (``HF_HUB_CACHE``, else ``HF_HOME/hub``), read now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    return Path(home) / "hub"


def connect() -> Hub:
    try:
        from huggingface_hub import constants
    except ImportError as e:  # pragma: no cover - a core dependency
        raise MissingDependencyError("huggingface_hub", extra="hf", purpose="downloading") from e
    # HF_ENDPOINT is read now (huggingface_hub froze it at import; hf_hub_url(endpoint=…) rewrites it)
    endpoint = (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    return Hub(endpoint=endpoint, token=os.environ.get("HF_TOKEN") or None, cache=hf_cache_dir(),
               offline=constants.is_offline_mode())


def call_hub(fn: Callable[[], Any], target: Target, hub: Hub, filename: str | None = None) -> Any:
    """Run a Hub call and turn its failures into llmlab errors that say what to do."""
    import httpx2
    from huggingface_hub.errors import (EntryNotFoundError, FileMetadataError, GatedRepoError, HfHubHTTPError,
                                        OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError)

    t = target
    try:
        return fn()
    except OfflineModeIsEnabled:
        raise OfflineError(f"cannot download {t.spec}: offline mode is on (HF_HUB_OFFLINE=1); unset it to download") from None
    except GatedRepoError:
        why = "your HF_TOKEN has no access to it yet" if hub.token else "no token is set"
        raise GatedModelError(
            f"{t.repo_id} is a gated {t.noun} and {why}. Open {hub.endpoint}/{t.page} while logged in and accept "
            f"its licence, create a read token at {hub.endpoint}/settings/tokens, then: export HF_TOKEN=hf_... "
            f"(or run `hf auth login`) and pull again.") from None
    except RepositoryNotFoundError:
        hint = "" if hub.token else " If it is private or gated, set HF_TOKEN to a token with access."
        raise t.not_found(f"{t.noun} repository {t.repo_id!r} was not found on {hub.endpoint}; check the id.{hint}") from None
    except RevisionNotFoundError:
        raise t.not_found(f"{t.repo_id} has no revision {t.revision!r}") from None
    except EntryNotFoundError:
        raise t.not_found(f"{t.repo_id} has no file {filename!r}; list its files on "
                          f"{hub.endpoint}/{t.page}/tree/{t.revision}") from None
    except FileMetadataError as e:
        raise DownloadError(f"{hub.endpoint} did not answer like a Hugging Face Hub ({e}); check HF_ENDPOINT") from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        if status == 401:
            raise GatedModelError(f"{hub.endpoint} refused {t.repo_id} without authentication (401): set HF_TOKEN "
                                  f"to a token that can read it (create one at {hub.endpoint}/settings/tokens)") from None
        raise DownloadError(f"the Hub answered {status} for {t.repo_id}: {str(e).splitlines()[0]}") from None
    except (httpx2.ConnectError, httpx2.TimeoutException) as e:
        raise NetworkError(f"cannot reach {hub.endpoint} ({type(e).__name__}): check your network connection, or set "
                           f"HF_ENDPOINT to a reachable mirror. What you already pulled works offline.") from None


def file_metadata(hub: Hub, target: Target, filename: str):
    """The Hub's HEAD answer for one file (size, etag, commit, download location)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(target.repo_id, filename, repo_type=target.repo_type, revision=target.revision,
                     endpoint=hub.endpoint)
    meta = call_hub(lambda: get_hf_file_metadata(url, token=hub.token, endpoint=hub.endpoint), target, hub, filename)
    if not meta.commit_hash or not meta.etag:
        raise DownloadError(f"{hub.endpoint} sent no commit or ETag for {filename}; check HF_ENDPOINT")
    return meta


def storage(hub: Hub, target: Target) -> Path:
    """The repo's folder in the cache (``models--org--name`` / ``datasets--org--name``)."""
    return hub.cache / (f"{target.repo_type}s--" + target.repo_id.replace("/", "--"))


def partial_path(hub: Hub, target: Target, meta) -> Path:
    return storage(hub, target) / "blobs" / f"{meta.etag}.incomplete"


def check_disk(hub: Hub, target: Target, metas, free_hint: str = "llmlab models rm NAME") -> None:
    """Refuse before downloading when the bytes still missing do not fit on the disk."""
    need = 0
    for f, m in metas:
        if (storage(hub, target) / "snapshots" / m.commit_hash / f).exists():
            continue
        if (storage(hub, target) / "blobs" / m.etag).exists():
            continue
        part = partial_path(hub, target, m)
        need += max(0, (m.size or 0) - (part.stat().st_size if part.exists() else 0))
    free = free_bytes(hub.cache)
    if need and need + DISK_MARGIN > free:
        raise NotEnoughDiskError(
            f"not enough disk space for {target.spec}: it needs {human(need)} (+{human(DISK_MARGIN)} margin) but "
            f"{hub.cache} has {human(free)} free. Free some space ({free_hint}) or point HF_HUB_CACHE "
            f"at a bigger disk.")


def download(hub: Hub, target: Target, filename: str, meta, progress: bool, say: Callable[[str], None],
             sha256: str | None = None) -> FileResult:
    """Fetch one file into the cache (resuming a partial one), verify it, return where it is.

    ``sha256``, when given, is checked too (a catalog's pin), even if the Hub's ETag is a sha1.
    """
    import httpx2
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    folder = storage(hub, target)
    pointer = folder / "snapshots" / meta.commit_hash / filename
    etag = meta.etag
    known = sha256 or (etag if SHA256_RE.match(etag) else None)
    if pointer.exists():
        if sha256:
            verify_sha256(pointer, sha256, filename, remove=False)
        return FileResult(filename, pointer.stat().st_size, known, str(pointer), False)
    blob = folder / "blobs" / etag
    resumed = 0
    if not blob.exists():
        part = partial_path(hub, target, meta)
        part.parent.mkdir(parents=True, exist_ok=True)
        resumed = part.stat().st_size if part.exists() else 0
        if meta.size is not None and resumed > meta.size:  # not ours: start over
            part.unlink()
            resumed = 0
        if resumed:
            say(f"resuming {filename} at {human(resumed)} of {human(meta.size or 0)}")
        else:
            say(f"downloading {filename} ({human(meta.size or 0)})")
        headers = build_hf_headers(token=hub.token)
        if urlparse(meta.location).netloc != urlparse(hub.endpoint).netloc:
            headers.pop("authorization", None)  # never send the token to a CDN
        try:
            with open(part, "ab") as fh:
                http_get(meta.location, fh, resume_size=resumed, headers=headers, expected_size=meta.size,
                         displayed_filename=filename, tqdm_class=None if progress else SilentBar)
        except (httpx2.HTTPError, HfHubHTTPError, OSError) as e:
            have = part.stat().st_size if part.exists() else 0
            raise NetworkError(
                f"download of {filename} was interrupted ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                f"{human(have)} kept — run the same command again to resume") from None
        verify(part, etag, meta.size, filename)
        if sha256:
            verify_sha256(part, sha256, filename)
        os.replace(part, blob)
    elif sha256:
        verify_sha256(blob, sha256, filename)
    # huggingface_hub writes the snapshot pointer and refs/ itself (the blob is already there)
    path = call_hub(lambda: hf_hub_download(target.repo_id, filename, repo_type=target.repo_type,
                                            revision=target.revision, cache_dir=hub.cache, endpoint=hub.endpoint,
                                            token=hub.token), target, hub, filename)
    p = Path(path)
    return FileResult(filename, p.stat().st_size, known, str(p), True, resumed)


def _mismatch(path: Path, filename: str, expected: str, got: str, remove: bool) -> ChecksumMismatchError:
    if remove:
        path.unlink(missing_ok=True)
        what = "The bad file was removed; pull again (a proxy or mirror may be corrupting downloads)."
    else:
        what = f"The cached copy {path} is not the pinned file; remove it (llmlab … rm NAME) and pull again."
    return ChecksumMismatchError(f"checksum mismatch for {filename}: expected {expected}, got {got}. {what}")


def verify(path: Path, etag: str, size: int | None, filename: str) -> None:
    """Check the finished file against the Hub's hash: LFS sha256, or the git blob sha1 of small files."""
    actual_size = path.stat().st_size
    if SHA256_RE.match(etag):
        h = hashlib.sha256()
    elif SHA1_RE.match(etag):
        h = hashlib.sha1()
        h.update(b"blob %d\0" % actual_size)
    else:
        log.warning("%s: the Hub's ETag %r is not a content hash; size checked only", filename, etag)
        h = None
    ok = size is None or actual_size == size
    if h is not None and ok:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(8 * 1024**2), b""):
                h.update(chunk)
        ok = h.hexdigest() == etag
    if not ok:
        got = h.hexdigest() if h is not None else f"{actual_size} bytes"
        raise _mismatch(path, filename, etag, got, remove=True)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(8 * 1024**2), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str, filename: str, remove: bool = True) -> None:
    """Check a file against a sha256 recorded elsewhere (a catalog pin)."""
    got = sha256_of(path)
    if got != expected.lower():
        raise _mismatch(path, filename, expected, got, remove)


class SilentBar:
    """A do-nothing progress bar for ``progress=False``."""

    def __init__(self, *args, **kwargs):
        pass

    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"  # pragma: no cover
