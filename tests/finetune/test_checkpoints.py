"""Checkpoints cut short are never resumed from; a full disk is named with the way to go on (no model needed)."""
from __future__ import annotations

import errno
import json

import pytest

from llmlab.errors import DiskFullError, InvalidParameterError
from llmlab.finetune.checkpoints import (disk_full, disk_full_named, incomplete_checkpoints, last_checkpoint,
                                         remove_incomplete, save_final, write_atomic)


def _ckpt(out, step, state: str | None):
    d = out / "checkpoints" / f"checkpoint-{step}"
    d.mkdir(parents=True)
    (d / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    if state is not None:
        (d / "trainer_state.json").write_text(state)
    return d


def test_only_checkpoints_with_a_whole_state_file_count(tmp_path):
    _ckpt(tmp_path, 2, json.dumps({"global_step": 2}))
    _ckpt(tmp_path, 4, json.dumps({"global_step": 4}))
    _ckpt(tmp_path, 6, '{"global_step": 6, "log_hist')  # the disk filled while the state was written
    _ckpt(tmp_path, 8, None)  # the weights were being written
    _ckpt(tmp_path, 10, json.dumps({"global_step": 3}))  # not this folder's state
    assert last_checkpoint(tmp_path).name == "checkpoint-4"
    assert [p.name for p in incomplete_checkpoints(tmp_path)] == ["checkpoint-6", "checkpoint-8", "checkpoint-10"]
    assert [p.name for p in remove_incomplete(tmp_path)] == ["checkpoint-6", "checkpoint-8", "checkpoint-10"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file data/3: "
                 "file write failed"),  # torch.save drops the errno
    Exception('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on '
              'device" })'),  # safetensors' Rust error
])
def test_the_ways_libraries_say_the_disk_is_full(error):
    assert disk_full(error)


def test_other_errors_are_not_a_full_disk(tmp_path):
    assert not disk_full(RuntimeError("CUDA out of memory"), tmp_path)
    assert not disk_full(OSError(errno.EACCES, "Permission denied"), tmp_path)  # plenty of space here


def test_a_full_disk_names_the_checkpoint_removes_it_and_says_how_to_resume(tmp_path):
    _ckpt(tmp_path, 2, json.dumps({"global_step": 2}))
    with pytest.raises(DiskFullError) as e:
        with disk_full_named(tmp_path):
            _ckpt(tmp_path, 4, None)
            raise OSError(errno.ENOSPC, "No space left on device")
    msg = str(e.value)
    assert f"checkpoint {tmp_path}/checkpoints/checkpoint-4" in msg and "removed the incomplete checkpoint-4" in msg
    assert f"--resume to continue from {tmp_path}/checkpoints/checkpoint-2" in msg
    assert not (tmp_path / "checkpoints" / "checkpoint-4").exists()
    with pytest.raises(ValueError, match="not a disk"):  # anything else passes through untouched
        with disk_full_named(tmp_path):
            raise ValueError("not a disk problem")
    with pytest.raises(InvalidParameterError):  # our own errors are already clear
        with disk_full_named(tmp_path):
            raise InvalidParameterError("no space left on device for this parameter")


class _Trainer:
    def __init__(self, fail: bool):
        self.fail = fail

    def save_model(self, folder):
        from pathlib import Path

        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "adapter_model.safetensors").write_bytes(b"new" * 10)
        if self.fail:
            raise OSError(errno.ENOSPC, "No space left on device")


class _Tokenizer:
    def save_pretrained(self, folder):
        from pathlib import Path

        (Path(folder) / "tokenizer.json").write_text("{}")


def test_the_final_model_is_replaced_whole_or_not_at_all(tmp_path):
    (tmp_path / "adapter_model.safetensors").write_bytes(b"old")
    with pytest.raises(OSError):
        save_final(_Trainer(fail=True), _Tokenizer(), tmp_path, is_main=True)
    assert (tmp_path / "adapter_model.safetensors").read_bytes() == b"old"  # the previous model, untouched
    assert not (tmp_path / ".saving").exists()  # the half-saved one is gone (its space freed)
    save_final(_Trainer(fail=False), _Tokenizer(), tmp_path, is_main=True)
    assert (tmp_path / "adapter_model.safetensors").read_bytes() == b"new" * 10
    assert (tmp_path / "tokenizer.json").exists() and not (tmp_path / ".saving").exists()


def test_write_atomic_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "llmlab_run.json"
    target.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.fsync", full)
    with pytest.raises(OSError):
        write_atomic(target, "new")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
