"""The GPU check's dry run: the plan for a CUDA machine, built on this CPU machine without the network."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

for _dep in ("torch", "transformers", "trl", "datasets", "bitsandbytes"):
    pytest.importorskip(_dep)


def test_dry_run_plans_every_part_and_what_travels():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PIP_NO_INDEX": "1", "no_proxy": "*"}
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run"], capture_output=True,
                       text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["dry_run"] is True and out["parts"] == ["generate", "nf4", "qlora", "pytest"]
    smol, poly = out["models"]["smollm2-135m"], out["models"]["polyglot-ko-1.3b"]
    assert smol["class"] == "LlamaForCausalLM" and smol["params"] == 134_515_008  # SmolLM2-135M's real count
    assert poly["class"] == "GPTNeoXForCausalLM" and 1.3e9 < poly["params"] < 1.5e9
    assert 0 < poly["predicted_bytes"]["nf4"] < poly["predicted_bytes"]["inference_bf16"]
    assert out["imports_checked"] > 10
    packs = {p.split("==")[0].lower().replace("_", "-") for p in out["to_pack"]}
    assert {"bitsandbytes", "trl", "datasets", "pydantic", "pydantic-settings"} <= packs  # the device lacks them
    assert not packs & {"torch", "transformers", "peft", "accelerate", "safetensors", "tokenizers"}  # it has these
    assert out["tree_bytes"] > 0 and out["carry_bytes"] >= 0
    if not out["wheels_packed"]:
        assert "run --pack" in out["note"] and out["missing_on_device"]
    assert any("meta device" in s for s in out["skipped"])
