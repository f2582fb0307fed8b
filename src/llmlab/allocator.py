"""Hand freed tensor memory back to the system: glibc malloc settings for training and GGUF loading.

torch's CPU tensors come from ``malloc``. glibc serves a request above its *mmap threshold*
with a mapping of its own, unmapped again on ``free``; below it, from heaps it keeps and only
shrinks from the top. The threshold starts at 128 KiB but rises to the size of each mapped
block that is freed (up to 32 MiB), so once torch has freed a few activations of some MiB,
every later one of that size comes from a heap — and a training step that frees its
activations in another order than it made them leaves most of them resident: the default
LoRA run of the bundled model held about 2 GiB of freed memory after its first step
(bench/fit.py ``--trace``; docs/finetune.md). Setting the threshold explicitly turns that
rise off: blocks of :data:`MMAP_THRESHOLD` or more are always mapped and given back when
freed. :func:`trim` also returns the free pages inside the heaps (after loading a model).

Both are process-wide and harmless for other code; they apply only under glibc, and an
``MALLOC_MMAP_THRESHOLD_`` (or a ``glibc.malloc.mmap_threshold`` tunable) the user set is kept.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import platform
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: blocks of this size or more are mapped on their own and unmapped when freed. Activations of
#: a training step are MiBs (one 4 × 512-token hidden state of the bundled model: 4.5 MiB);
#: below 1 MiB the heap's reuse saves page faults and wastes little
MMAP_THRESHOLD = 1 << 20
M_MMAP_THRESHOLD = -3  # mallopt parameter numbers from glibc's malloc.h


@dataclass(frozen=True)
class AllocatorSetting:
    """What :func:`release_freed_memory` did, and why."""

    applied: bool
    mmap_threshold: int | None
    reason: str


@functools.lru_cache(maxsize=1)
def _libc():
    """glibc loaded through ctypes, or ``None`` on another C library (musl, macOS, Windows)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # pragma: no cover - glibc without the symbols
        return None


def _user_setting() -> str | None:
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return "MALLOC_MMAP_THRESHOLD_"
    if "glibc.malloc.mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    return None


@functools.lru_cache(maxsize=1)
def release_freed_memory(threshold: int = MMAP_THRESHOLD) -> AllocatorSetting:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process (once; later calls return the first result)."""
    libc = _libc()
    if libc is None:
        return AllocatorSetting(False, None, "not glibc: the C library's own policy is kept")
    user = _user_setting()
    if user:
        return AllocatorSetting(False, None, f"{user} is set: the user's threshold is kept")
    if libc.mallopt(M_MMAP_THRESHOLD, int(threshold)) != 1:
        return AllocatorSetting(False, None, f"mallopt(M_MMAP_THRESHOLD, {threshold}) was refused")
    log.debug("glibc mmap threshold fixed at %d bytes", threshold)
    return AllocatorSetting(True, int(threshold), "freed blocks of this size or more go back to the system")


def trim() -> bool:
    """Give the free pages inside glibc's heaps back to the system (``malloc_trim(0)``); False when not glibc."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
