"""The repository tracks no large file: every clone downloads what is tracked, and a GPU session
can send only 64 MiB of working tree to its device machine (docs/gpu.md)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 5 * 2**20
#: tracked files allowed above the limit, each with its reason (none today)
ALLOWED: dict[str, str] = {}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:  # a source tarball, not a clone
        pytest.fail(f"git ls-files failed in {ROOT}: {e}")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_over_5_mb():
    files = tracked_files()
    assert files, "git ls-files listed nothing"
    big = {str(p.relative_to(ROOT)): p.stat().st_size for p in files
           if p.is_file() and p.stat().st_size > LIMIT and str(p.relative_to(ROOT)) not in ALLOWED}
    assert not big, f"tracked files over {LIMIT // 2**20} MiB (move them out, or allow-list them with a reason): {big}"
