"""What a fine-tuning run leaves on disk, made safe against kills and full disks.

The trainer writes ``OUT/checkpoints/checkpoint-N`` in place, its ``trainer_state.json`` last,
so a checkpoint is *complete* only when that file reads as JSON naming step N: one cut short
(a kill, a full disk) is never resumed from, and :func:`remove_incomplete` deletes it (it would
also confuse the trainer's rotation of old checkpoints). The final model and the run card are
written atomically (:func:`save_final`, :func:`write_atomic`): into a temporary name first, then
renamed over the old files, so a folder never holds half an adapter. :func:`disk_full_named`
turns a full disk anywhere in a run into one :class:`~llmlab.errors.DiskFullError` naming the
path and how to continue (``--resume`` from the newest complete checkpoint).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

from ..diskspace import disk_full as _disk_full
from ..errors import DiskFullError, LLMLabError

CHECKPOINTS = "checkpoints"
STATE = "trainer_state.json"
SAVING = ".saving"  # the temporary folder the final model is written into


def _step(p: Path) -> int | None:
    suffix = p.name[len("checkpoint-"):]
    return int(suffix) if p.name.startswith("checkpoint-") and suffix.isdigit() else None


def is_complete(checkpoint: Path) -> bool:
    """Whether the trainer finished writing ``checkpoint`` (its state file parses and names its step)."""
    try:
        state = json.loads((checkpoint / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and state.get("global_step") == _step(checkpoint)


def _checkpoints(out: str | Path) -> list[Path]:
    root = Path(out) / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and _step(p) is not None), key=_step)


def last_checkpoint(out: str | Path) -> Path | None:
    """The newest complete checkpoint under ``OUT/checkpoints`` (None when there is none)."""
    done = [p for p in _checkpoints(out) if is_complete(p)]
    return done[-1] if done else None


def incomplete_checkpoints(out: str | Path) -> list[Path]:
    """Checkpoint folders the trainer did not finish writing."""
    return [p for p in _checkpoints(out) if not is_complete(p)]


def remove_incomplete(out: str | Path) -> list[Path]:
    """Delete the checkpoints cut short (they are never resumed from); returns what was removed."""
    gone = incomplete_checkpoints(out)
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    stale = Path(out) / SAVING
    if stale.exists():
        shutil.rmtree(stale, ignore_errors=True)
    return gone


def disk_full(e: BaseException, where: Path | None = None) -> bool:
    """Whether ``e`` is a full disk (:func:`llmlab.diskspace.disk_full`): torch and safetensors drop the
    errno of a failed write, so an ``OSError``/``RuntimeError`` counts when the disk under ``where`` is
    nearly full (our own errors never do)."""
    return _disk_full(e, None if isinstance(e, LLMLabError) else where, failed_writes=(OSError, RuntimeError))


@contextlib.contextmanager
def disk_full_named(out: str | Path) -> Iterator[None]:
    """Inside the block, a full disk becomes a :class:`DiskFullError` naming what was being written; the
    checkpoint it cut short is removed, and the message says how to go on."""
    out = Path(out)
    try:
        yield
    except Exception as e:
        if isinstance(e, LLMLabError) or not disk_full(e, out):
            raise
        cut = remove_incomplete(out)
        last = last_checkpoint(out)
        what = f"checkpoint {cut[-1]}" if cut else f"the model in {out}"
        removed = f"; removed the incomplete {', '.join(p.name for p in cut)}" if cut else ""
        then = (f"run the same command with --resume to continue from {last}" if last is not None
                else "run the same command again (no complete checkpoint to resume from yet)")
        raise DiskFullError(f"disk full while saving {what} ({_reason(e)}){removed}; free some space under "
                            f"{out} and {then}") from e


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: the old file or the new one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_final(trainer: Any, tokenizer: Any, out: Path, is_main: bool) -> None:
    """The trained model and tokenizer into ``out``: written to ``out/.saving`` first, then renamed into place."""
    tmp = out / SAVING
    if is_main and tmp.exists():
        shutil.rmtree(tmp)
    try:
        trainer.save_model(str(tmp))  # every process calls it (a sharded model gathers); the main one writes
        if not is_main:
            return
        tokenizer.save_pretrained(str(tmp))
        for f in sorted(tmp.iterdir()):
            target = out / f.name
            if f.is_dir() and target.is_dir():
                shutil.rmtree(target)
            os.replace(f, target)
        tmp.rmdir()
    except BaseException:
        if is_main:
            shutil.rmtree(tmp, ignore_errors=True)  # frees the space the half-saved model took
        raise
