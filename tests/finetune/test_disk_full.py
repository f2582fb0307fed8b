"""A full disk while a checkpoint is saved: a clear error naming it, nothing half-written kept, --resume goes on.

The injected variant makes ``torch.save`` fail half-way into a checkpoint's optimizer file the
way it fails on a full disk (its error drops the errno) and always runs; the tmpfs variant
trains into a real tiny filesystem through the CLI (it needs the right to mount one).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from llmlab.config import Settings
from llmlab.errors import DiskFullError

from ..diskfull import resize, tmpfs

pytestmark = pytest.mark.slow
pytest.importorskip("trl")

ARGS = dict(base="smollm2-135m", max_steps=3, batch_size=2, max_seq_len=64, lora_r=2, lr=2e-3, save_steps=1,
            threads=1, seed=0)


def test_a_checkpoint_cut_short_by_a_full_disk_is_named_removed_and_resumed_past(memorize_file, session_home,
                                                                                 tmp_path, monkeypatch):
    import torch

    from llmlab.finetune.config import TrainConfig
    from llmlab.finetune.train import train

    out = tmp_path / "run"
    real_save = torch.save

    def save_on_a_filling_disk(obj, f, *a, **kw):
        if "checkpoint-2" in str(f):
            with open(f, "wb") as half:
                half.write(b"PK\3\4" + b"\0" * 4096)  # what had fit
            raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing "
                               "file data/0: file write failed")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", save_on_a_filling_disk)
    config = dict(ARGS, train=str(memorize_file), out=str(out))
    with pytest.raises(DiskFullError) as e:
        train(TrainConfig(**config), settings=Settings(home=session_home), progress=False)
    msg = str(e.value)
    assert f"disk full while saving checkpoint {out}/checkpoints/checkpoint-2" in msg, msg
    assert f"--resume to continue from {out}/checkpoints/checkpoint-1" in msg, msg
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-1"]  # the half one is gone
    assert not (out / "llmlab_run.json").exists()

    monkeypatch.setattr(torch, "save", real_save)  # space freed
    result = train(TrainConfig(**config, resume=True), settings=Settings(home=session_home), progress=False)
    assert result.resumed_from == str(out / "checkpoints" / "checkpoint-1")
    assert result.steps == 3 and [s for s, _ in result.losses] == [1, 2, 3]
    assert json.loads((out / "llmlab_run.json").read_text())["metrics"]["steps"] == 3
    assert (out / "adapter_model.safetensors").exists() and not (out / ".saving").exists()


def test_the_cli_on_a_full_tmpfs_names_the_checkpoint_and_resumes(memorize_file, session_home, tmp_path):
    cmd = [sys.executable, "-m", "llmlab.cli.main", "finetune", str(memorize_file), "--base", ARGS["base"],
           "--max-steps", "3", "--batch-size", "2", "--max-seq-len", "64", "--lora-r", "2", "--lr", "2e-3",
           "--save-steps", "1", "--threads", "1", "--seed", "0", "--json"]
    env = {**os.environ, "LLMLAB_HOME": str(session_home)}
    with tmpfs(tmp_path / "fs", 14) as fs:  # a checkpoint of this run takes 11 MiB: the second does not fit
        out = fs / "run"
        full = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True, env=env, timeout=600)
        assert full.returncode == 1, full.stderr[-3000:]
        errors = [ln for ln in full.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "disk full while saving" in errors[0] and str(out) in errors[0], full.stderr[-3000:]
        assert "Traceback" not in full.stderr
        done = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
        assert done and all(json.loads((out / "checkpoints" / d / "trainer_state.json").read_text())["global_step"]
                            == int(d.split("-")[1]) for d in done), done  # only complete checkpoints are left
        assert f"--resume to continue from {out}/checkpoints/{done[-1]}" in errors[0]
        resize(fs, 256)  # space freed
        again = subprocess.run(cmd + ["--out", str(out), "--resume"], capture_output=True, text=True, env=env,
                               timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]
        result = json.loads(again.stdout)
        assert result["resumed_from"] == str(out / "checkpoints" / done[-1]) and result["steps"] == 3
