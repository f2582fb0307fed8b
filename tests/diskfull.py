"""A real full disk for the disk-full tests: a tiny tmpfs mounted for one test, filled to the brim.

Mounting needs root (or CAP_SYS_ADMIN); where that is refused the tmpfs tests skip, and each
area keeps an injected-fault variant beside them that always runs.
"""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


@contextmanager
def tmpfs(path: Path, size_mib: int) -> Iterator[Path]:
    """Mount a ``size_mib`` MiB tmpfs at ``path`` for the block (skips the test where mounting is refused)."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}); the injected variant covers this")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def resize(path: Path, size_mib: int) -> None:
    """Give the tmpfs at ``path`` a new size (more space: 'the user freed some')."""
    subprocess.run(["mount", "-o", f"remount,size={size_mib}m", str(path)], check=True, capture_output=True)


def fill(path: Path, name: str = "filler.bin") -> Path:
    """Write a file under ``path`` until the disk is full; returns it (delete it to free the space)."""
    filler = path / name
    block = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    with open(filler, "ab", buffering=0) as f:  # the last partial block
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    os.sync()
    return filler
