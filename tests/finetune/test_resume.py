"""A killed training run continues from its last checkpoint with ``--resume``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from llmlab.config import Settings

pytestmark = pytest.mark.slow
pytest.importorskip("trl")


def test_resume_after_kill(memorize_file, session_home, tmp_path):
    from llmlab.finetune.config import TrainConfig
    from llmlab.finetune.train import train

    out = tmp_path / "run"
    args = dict(train=str(memorize_file), base="smollm2-135m", out=str(out), max_steps=4, batch_size=2,
                max_seq_len=64, lora_r=4, lr=2e-3, save_steps=2, threads=1, seed=0)
    cmd = [sys.executable, "-m", "llmlab.cli.main", "finetune", args["train"], "--base", args["base"], "--out", str(out),
           "--max-steps", "4", "--batch-size", "2", "--max-seq-len", "64", "--lora-r", "4", "--lr", "2e-3",
           "--save-steps", "2", "--threads", "1", "--seed", "0", "--json"]
    env = {**os.environ, "LLMLAB_HOME": str(session_home)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = out / "checkpoints" / "checkpoint-2" / "trainer_state.json"
    try:
        deadline = time.monotonic() + 240
        while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.exists(), proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no checkpoint in time"
    finally:
        proc.kill()  # SIGKILL: no chance to clean up, like a crash or a lost machine
        proc.wait()
    assert not (out / "llmlab_run.json").exists()  # it really did not finish
    done = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))

    result = train(TrainConfig(**args, resume=True), settings=Settings(home=session_home), progress=False)
    assert result.resumed_from is not None and result.resumed_from.split("/")[-1] in done
    assert result.steps == 4
    steps = [s for s, _ in result.losses]
    assert steps == [1, 2, 3, 4]  # the killed run's losses come back from the checkpoint's log
    assert json.loads((out / "llmlab_run.json").read_text())["metrics"]["steps"] == 4
