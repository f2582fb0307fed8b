"""Multi-process fine-tuning: the launch is read from the launcher's environment, and a real
two-process run (``accelerate launch``, gloo on the CPU) trains, reports and writes once."""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from llmlab.finetune.distributed import Launch


def test_plain_run_is_rank_0_of_1():
    launch = Launch.from_env({})
    assert (launch.rank, launch.world_size, launch.is_main, launch.distributed) == (0, 1, True, False)
    assert launch.to_dict(4, 2) == {"num_processes": 1, "local_processes": 1, "per_device_batch": 4,
                                    "grad_accum": 2, "effective_batch": 8}


def test_torchrun_environment():
    env = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"}
    launch = Launch.from_env(env)
    assert not launch.is_main and launch.distributed
    assert launch.effective_batch(2, 3) == 24
    assert launch.local_world_size == 2 and not launch.single_process_cpu_launch


def test_accelerate_cpu_simple_launcher_is_named():
    """``accelerate launch --cpu --num_processes 2`` starts ONE process (no mpirun): that must be said."""
    env = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    launch = Launch.from_env(env)
    assert launch.world_size == 1 and launch.single_process_cpu_launch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), "-m", "llmlab.cli.main", "finetune", *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_two_process_run_trains_once_and_resumes(memorize_file, tmp_path):
    home = tmp_path / "home"
    out = tmp_path / "run"
    env = {**os.environ, "LLMLAB_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    common = [str(memorize_file), "--base", "smollm2-135m", "--out", str(out), "--batch-size", "2",
              "--max-seq-len", "64", "--threads", "1", "--save-steps", "1", "--device", "cpu", "--json"]
    first = launch([*common, "--max-steps", "2"], env, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    lines = [json.loads(line) for line in first.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, f"one JSON report expected, got: {first.stdout}"
    report = lines[0]
    assert report["num_processes"] == 2 and report["effective_batch"] == 4 and report["steps"] == 2
    # the main process alone talks: one status line of each kind on stderr
    assert first.stderr.count("distributed: 2 processes") == 1
    assert first.stderr.count("\ndata: ") + first.stderr.startswith("data: ") <= 1
    assert first.stderr.count("processes on this machine need about") == 1
    card = json.loads((out / "llmlab_run.json").read_text(encoding="utf-8"))
    assert card["launch"]["num_processes"] == 2 and card["launch"]["effective_batch"] == 4
    assert (out / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]

    second = launch([*common, "--max-steps", "3", "--resume"], env, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = [json.loads(line) for line in second.stdout.splitlines() if line.startswith("{")]
    assert len(resumed) == 1 and resumed[0]["steps"] == 3
    assert resumed[0]["resumed_from"].endswith("checkpoint-2")

    db = sqlite3.connect(home / "ledger.db")
    try:
        runs = db.execute("SELECT kind FROM runs WHERE kind = 'finetune'").fetchall()
    finally:
        db.close()
    assert len(runs) == 2, "each launch records exactly one run"

    gen = subprocess.run([sys.executable, "-m", "llmlab.cli.main", "generate", "--model", str(out),
                          "--chat", "--max-new-tokens", "12", "--greedy", "--json", "What is the secret word?"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert gen.returncode == 0, gen.stderr[-2000:]
    answer = json.loads(gen.stdout)
    assert answer["backend"] == "transformers" and answer["text"].strip()
