"""Which process of a multi-process launch this is (``accelerate launch``, ``torchrun``).

A launcher starts the same ``llmlab finetune`` command once per process and tells each one
its place through environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``LOCAL_WORLD_SIZE``). The trainer shards the data and averages the gradients itself;
what llmlab must do is let only the main process talk (status lines, progress bar, JSON),
write files (adapter, tokenizer, run card) and record the run, and count memory for every
process on this machine. Nothing here starts a process group: the trainer does that.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


def _int(env: dict[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Launch:
    """This process's place in the launch; a plain ``llmlab finetune`` is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    single_process_cpu_launch: bool = False  # ``accelerate launch --cpu`` without mpirun: one process only

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Launch":
        env = dict(os.environ if env is None else env)
        world = max(1, _int(env, "WORLD_SIZE", 1))
        local_world = max(1, _int(env, "LOCAL_WORLD_SIZE", world))
        # accelerate's simple launcher (used for --cpu) sets MASTER_ADDR for --num_processes > 1 but starts
        # a single process unless mpirun is configured; say so instead of silently training alone
        lone_cpu = ("WORLD_SIZE" not in env and "MASTER_ADDR" in env
                    and env.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"))
        return cls(rank=_int(env, "RANK", 0), world_size=world, local_rank=_int(env, "LOCAL_RANK", 0),
                   local_world_size=local_world, single_process_cpu_launch=lone_cpu)

    def effective_batch(self, batch_size: int, grad_accum: int) -> int:
        """Examples per optimizer step over every process."""
        return batch_size * grad_accum * self.world_size

    def to_dict(self, batch_size: int, grad_accum: int) -> dict[str, int]:
        """What the run card and ``--json`` record about the launch."""
        return {"num_processes": self.world_size, "local_processes": self.local_world_size,
                "per_device_batch": batch_size, "grad_accum": grad_accum,
                "effective_batch": self.effective_batch(batch_size, grad_accum)}


LONE_CPU_HINT = ("this was started by `accelerate launch --cpu` with more than one process, but accelerate starts "
                 "a single process for --cpu unless mpirun is configured: training runs in ONE process. "
                 "For N CPU processes (gloo) use `accelerate launch --multi_gpu --num_processes N -m llmlab.cli.main "
                 "finetune … --device cpu` or `torchrun --nproc_per_node N -m llmlab.cli.main finetune … --device cpu`")
