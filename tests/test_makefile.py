"""The Makefile: which Python it picks, what `make run` installs versus `make setup`, and the port.

Run with ``make -n`` (print, do not execute) in a scratch copy, except the no-Python case, which
really runs the venv rule with candidates that cannot satisfy it.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make(tmp_path: Path, *args: str, dry: bool = True) -> subprocess.CompletedProcess:
    shutil.copy2(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy2(ROOT / name, tmp_path / name)
    cmd = ["make", "--no-print-directory", *(["-n"] if dry else []), *args]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_run_installs_only_the_runtime_and_ui(tmp_path):
    out = make(tmp_path, "run").stdout
    installs = [line for line in out.splitlines() if "pip install -c constraints.txt -e" in line]
    assert installs == ['.venv/bin/python -m pip install -c constraints.txt -e ".[ui]"']
    assert "llmlab serve --model smollm2-135m" in out and "--port" not in out


def test_setup_installs_everything_the_tests_use(tmp_path):
    out = make(tmp_path, "setup").stdout
    extras = next(line for line in out.splitlines() if "pip install -c constraints.txt -e" in line)
    assert ".[all,dev" in extras
    assert ("gpu" in extras) == (shutil.which("nvidia-smi") is not None)


def test_port_is_passed_to_serve(tmp_path):
    out = make(tmp_path, "run", "PORT=9100").stdout
    assert "llmlab serve --model smollm2-135m --port 9100" in out


def test_an_explicit_python_is_used_and_named(tmp_path):
    out = make(tmp_path, ".venv/bin/python", f"PYTHON={sys.executable}").stdout
    assert f"{sys.executable} -m venv .venv" in out


def test_without_a_new_enough_python_it_says_why_and_stops(tmp_path):
    r = make(tmp_path, ".venv/bin/python", "PYTHON_CANDIDATES=no-such-python3.99", dry=False)
    assert r.returncode != 0
    assert "needs Python >= 3.11" in r.stderr and "no-such-python3.99" in r.stderr
    assert not (tmp_path / ".venv").exists()
