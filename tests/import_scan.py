"""Reading llmlab's imports from the source, shared by the layer and import-graph tests."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "llmlab"


def module_name(path: Path) -> str:
    """``src/llmlab/a/b.py`` → ``llmlab.a.b`` (a package's ``__init__.py`` → the package)."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(path: Path) -> str:
    """The package relative imports in ``path`` start from."""
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def from_target(node: ast.ImportFrom, package: str) -> str:
    """The absolute module a ``from … import`` statement takes names from (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))
