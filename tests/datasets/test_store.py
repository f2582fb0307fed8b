"""Bundled sets: every catalog entry is present as real files, each role resolves, the CLI prints the
same paths, and a built wheel carries them (the catalog, every file, the licence files)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmlab.cli.main import cli
from llmlab.datasets import bundled_root, describe, file, load_catalog, path
from llmlab.errors import DatasetNotFoundError

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = [e for e in load_catalog() if e.bundled]


@pytest.mark.parametrize("entry", BUNDLED, ids=[e.name for e in BUNDLED])
def test_every_bundled_set_is_there_with_its_files(entry):
    folder = path(entry.name)
    assert folder.is_dir() and folder == bundled_root() / entry.name
    assert (folder / "DATASHEET.md").is_file()
    info = describe(entry.name)
    assert info.available and info.size == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    for role, rel in entry.entry.items():
        assert file(entry.name, role) == folder / rel and (folder / rel).exists(), (entry.name, role)
    r = CliRunner().invoke(cli, ["datasets", "path", entry.name])
    assert r.exit_code == 0 and r.stdout.strip() == str(folder)


def test_unknown_roles_name_the_known_ones():
    with pytest.raises(DatasetNotFoundError, match="it has: dev"):
        file("course_mt", "train")


def test_list_marks_bundled_sets_ready():
    rows = {d["name"]: d for d in json.loads(CliRunner().invoke(cli, ["datasets", "list", "--json"]).stdout)["datasets"]}
    for e in BUNDLED:
        assert rows[e.name]["bundled"] is True and rows[e.name]["available"] is True and rows[e.name]["size"] > 0


@pytest.mark.slow
def test_the_wheel_carries_the_catalog_the_bundled_files_and_the_licences(tmp_path):
    tree = tmp_path / "tree"  # a copy, so the build leaves nothing (build/, *.egg-info) in the checkout
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE", "LICENSE-DATA", "NOTICE"):
        shutil.copy2(ROOT / name, tree / name)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path / "dist"), str(tree)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("llmlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "llmlab/datasets/catalog.yaml" in names
    src = ROOT / "src"
    for f in bundled_root().rglob("*"):
        if f.is_file() and "__pycache__" not in f.parts:
            assert f.relative_to(src).as_posix() in names, f
    licences = {n.rsplit("/", 1)[-1] for n in names if ".dist-info/licenses/" in n}
    assert {"LICENSE", "LICENSE-DATA", "NOTICE"} <= licences
