"""``llmlab models list|fit|pull|rm``: tables, one JSON object with --json, errors on stderr + exit 1."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmlab.cli.main import cli

from ..models.fakehub import FakeHub, write_tiny_gguf

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str):
    return CliRunner().invoke(cli, ["models", *args])


def test_list_json(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    r = run("list", "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    smol = next(m for m in d["models"] if m["name"] == "smollm2-135m")
    assert smol["kind"] == "bundled" and "English only" in smol["languages"]
    assert r.stdout.count("\n") == 1  # one JSON object, one line


def test_list_table():
    r = run("list")
    assert r.exit_code == 0 and r.stdout.startswith("NAME") and "smollm2-135m" in r.stdout and r.stderr == ""


def test_list_catalog_table_and_json():
    r = run("list", "--catalog")
    assert r.exit_code == 0
    assert "exaone-3.5-2.4b-instruct" in r.stdout and "[NC]" in r.stdout and "[gated]" in r.stdout
    j = json.loads(run("list", "--catalog", "--json").stdout)
    e = next(m for m in j["catalog"] if m["name"] == "polyglot-ko-1.3b")
    assert e["license"] == "Apache-2.0" and e["memory"] and e["pulled"] is False


def test_fit_json():
    r = run("fit", "smollm2-135m", "--context", "2048", "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["context"] == 2048 and d["runtime"] == "llama.cpp" and isinstance(d["fits_ram"], bool)
    assert {c["name"] for c in d["components"]} == {"weights", "kv_cache", "compute_buffer", "runtime_overhead"}
    assert d["total_gib"] == pytest.approx(d["total_bytes"] / 1024**3, abs=1e-3)


def test_fit_table_and_training():
    r = run("fit", "qwen2.5-1.5b-instruct", "--train", "lora", "--batch-size", "2", "--seq-len", "256")
    assert r.exit_code == 0, r.stderr
    assert "optimizer_states" in r.stdout and "lora fine-tuning" in r.stdout


def test_fit_errors_go_to_stderr_with_exit_1():
    r = run("fit", "smollm2-135m", "--load-in", "4bit")
    assert r.exit_code == 1 and r.stdout == "" and r.stderr.startswith("error: --load-in applies")
    r = run("fit", "nobody/nothing")
    assert r.exit_code == 1 and "llmlab models pull nobody/nothing" in r.stderr


def test_rm_unknown_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    r = run("rm", "qwen2.5-1.5b-instruct")
    assert r.exit_code == 1 and "not in the Hugging Face cache" in r.stderr


@pytest.fixture
def hub(tmp_path):
    server = FakeHub().start()
    server.add("Qwen/Qwen2.5-0.5B-Instruct-GGUF",
               {"qwen2.5-0.5b-instruct-q4_k_m.gguf": write_tiny_gguf(tmp_path / "t.gguf").read_bytes()})
    yield server
    server.stop()


def cli_env(hub, tmp_path, **extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0",
           "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "LLMLAB_HOME": str(tmp_path / "home")}
    env.pop("HF_TOKEN", None)
    env.update(extra)
    return env


def llmlab(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmlab.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_pull_list_rm_in_a_fresh_process(hub, tmp_path):
    """The real entry point with real environment variables (HF_ENDPOINT, HF_HUB_CACHE)."""
    env = cli_env(hub, tmp_path)
    p = llmlab("models", "pull", "qwen2.5-0.5b-instruct", "--json", env=env)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["model"] == "qwen2.5-0.5b-instruct" and d["downloaded_bytes"] > 0 and d["files"][0]["sha256"]
    assert "fit:" in p.stderr and "licence: Apache-2.0" in p.stderr and "done:" in p.stderr

    listed = json.loads(llmlab("models", "list", "--json", env=env).stdout)["models"]
    assert any(m["name"] == "qwen2.5-0.5b-instruct" and m["kind"] == "hf-cache" for m in listed)
    cat = json.loads(llmlab("models", "list", "--catalog", "--json", env=env).stdout)["catalog"]
    assert next(m for m in cat if m["name"] == "qwen2.5-0.5b-instruct")["pulled"] is True

    rm = llmlab("models", "rm", "qwen2.5-0.5b-instruct", "--json", env=env)
    assert rm.returncode == 0, rm.stderr
    assert json.loads(rm.stdout)["freed_bytes"] == d["files"][0]["bytes"]


def test_pull_offline_is_a_clear_error(hub, tmp_path):
    p = llmlab("models", "pull", "qwen2.5-0.5b-instruct", env=cli_env(hub, tmp_path, HF_HUB_OFFLINE="1"))
    assert p.returncode == 1 and p.stdout == ""
    assert "error:" in p.stderr and "HF_HUB_OFFLINE" in p.stderr
    assert hub.requests == []
