"""glibc's mmap threshold is fixed by ``release_freed_memory`` (freed tensors go back to the system).

Each case runs in a fresh interpreter: the setting is process-wide and glibc's dynamic threshold
depends on what the process freed before.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="the setting applies under glibc only")

PROBE = r'''
import ctypes, json
from llmlab.allocator import _libc, release_freed_memory

libc = _libc()
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

kept = []

def mapped(n):
    """Whether a new block of n bytes gets a mapping of its own (given back to the system on free).

    Blocks are kept, so no free heap space of that size is left to serve the next one."""
    before = libc.mallinfo2().hblkhd
    kept.append(libc.malloc(n))
    return libc.mallinfo2().hblkhd - before >= n

libc.free(libc.malloc(16 << 20))  # freeing a mapped 16 MiB block raises glibc's threshold to 16 MiB
before = mapped(4 << 20)
setting = release_freed_memory()
print(json.dumps({"before": before, "applied": setting.applied, "threshold": setting.mmap_threshold,
                  "after": mapped(4 << 20), "small": mapped(64 << 10), "reason": setting.reason}))
'''


def probe(**env) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in ("MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**base, "PYTHONPATH": str(SRC), **env},
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc
def test_freed_mib_blocks_are_mapped_again_once_the_threshold_is_fixed():
    r = probe()
    assert r["before"] is False  # glibc's default: after a 16 MiB free, 4 MiB blocks come from the heap
    assert r["applied"] is True and r["threshold"] == 1 << 20
    assert r["after"] is True  # now mapped on its own, so free() gives it back
    assert r["small"] is False  # small blocks still come from the heap


@glibc
def test_a_threshold_the_user_set_is_kept():
    r = probe(MALLOC_MMAP_THRESHOLD_="33554432")
    assert r["applied"] is False and "MALLOC_MMAP_THRESHOLD_" in r["reason"]
    assert r["after"] is False  # 32 MiB from the environment: a 4 MiB block stays in the heap


def test_training_applies_it_before_loading_the_model(tmp_path, monkeypatch):
    """``train`` fixes the threshold before the base model (and its dequantization copies) is loaded."""
    pytest.importorskip("torch")
    from llmlab.allocator import AllocatorSetting
    from llmlab.finetune import train as train_mod
    from llmlab.finetune.config import TrainConfig

    order: list[str] = []

    class Loaded(Exception):
        pass

    def fake_release():
        order.append("threshold")
        return AllocatorSetting(True, 1 << 20, "test")

    def fake_load(config, settings):
        order.append("load")
        raise Loaded

    monkeypatch.setattr(train_mod, "release_freed_memory", fake_release)
    monkeypatch.setattr(train_mod, "load_base", fake_load)
    data = tmp_path / "t.jsonl"
    data.write_text('{"instruction": "안녕?", "input": "", "output": "안녕하세요."}\n' * 4, encoding="utf-8")
    config = TrainConfig(train=str(data), base="smollm2-135m", out=str(tmp_path / "out"), max_steps=1, device="cpu")
    with pytest.raises(Loaded):
        train_mod.train(config, progress=False, ledger=False, echo=lambda line: None)
    assert order == ["threshold", "load"]
