"""The layers import in one direction: core → models → capabilities → server / webui / cli.

Every import is read from the source (top-level and inside functions, relative ones resolved),
so a lazy import cannot sneak a cycle back in. The server mounts the web UI, so the UI must
not import the server; both share what they need (jobs, the fine-tuning job) from below.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .import_scan import PKG, from_target, module_name, package_of
INTERFACES = ("llmlab.server", "llmlab.webui", "llmlab.cli")


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, as an absolute dotted name."""
    package = package_of(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = from_target(node, package)
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # ``from . import server``
    return found


def offenders(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [f"{module_name(p)} imports {m}" for p in files for m in sorted(imports_of(p))
            if any(m == f or m.startswith(f + ".") for f in forbidden)]


def py_files(*under: str) -> list[Path]:
    return sorted(p for u in under for p in (PKG / u).rglob("*.py"))


def test_the_import_scanner_sees_relative_and_lazy_imports():
    webui = PKG / "webui" / "screens" / "finetune.py"
    assert "llmlab.webui.lab" in imports_of(webui)  # ``from ..lab import Lab``
    assert "llmlab.finetune.job" in imports_of(webui)  # imported inside a function


def test_webui_does_not_import_the_server_or_cli():
    files = py_files("webui")
    assert files
    assert offenders(files, ("llmlab.server", "llmlab.cli")) == []


def test_server_does_not_import_the_cli():
    files = py_files("server")
    assert files
    assert offenders(files, ("llmlab.cli",)) == []


@pytest.mark.parametrize("forbidden", INTERFACES)
def test_nothing_below_the_interfaces_imports_them(forbidden):
    below = [p for p in PKG.rglob("*.py") if not module_name(p).startswith(INTERFACES)]
    assert below
    assert offenders(below, (forbidden,)) == []


def test_jobs_are_core_and_free_of_http():
    imported = imports_of(PKG / "jobs.py") | imports_of(PKG / "finetune" / "job.py")
    assert not any(m.split(".")[0] in ("fastapi", "starlette") for m in imported), imported
    assert not any(m.startswith(INTERFACES) for m in imported), imported
