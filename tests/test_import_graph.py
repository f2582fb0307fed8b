"""No import cycle anywhere in llmlab: the package's import graph is a DAG.

The graph is read from the source with ``ast`` — every ``import`` and ``from … import``,
at the top of a module *and* inside functions (a lazy import only hides a cycle, it does not
break it), relative imports resolved. ``from X import a`` is an edge to ``X.a`` when that is
a module, and to ``X`` when ``a`` is a name defined in ``X`` (``X``'s body must have run that
far) or ``X`` is not a package above the importer. The implicit import of a module's own parent
packages is not an edge (every submodule would otherwise cycle with its ``__init__``).
"""
from __future__ import annotations

import ast
from pathlib import Path

from .import_scan import PKG, from_target, module_name, package_of


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def edges_of(path: Path, known: set[str]) -> set[str]:
    """The llmlab modules ``path`` imports (anywhere in the file), as absolute dotted names."""
    name = module_name(path)
    package = package_of(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                # ``import a.b.c`` runs a, a.b and a.b.c; the deepest llmlab module is the edge
                parts = a.name.split(".")
                for i in range(len(parts), 0, -1):
                    if ".".join(parts[:i]) in known:
                        found.add(".".join(parts[:i]))
                        break
        elif isinstance(node, ast.ImportFrom):
            target = from_target(node, package)
            subs = {f"{target}.{a.name}" for a in node.names} & known
            found |= subs
            # the package X runs first in any case when it is an ancestor of this module; it is
            # an edge when a name is taken from it (its body must have defined it) or it is no ancestor
            ancestor = name == target or name.startswith(target + ".")
            if target in known and (len(subs) < len(node.names) or not ancestor):
                found.add(target)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: edges_of(p, known) for m, p in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, …, a]``, or None (iterative depth-first search, three colours)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in graph}
    for root in sorted(graph):
        if colour[root] != WHITE:
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        path = [root]
        colour[root] = GREY
        while stack:
            node, todo = stack[-1]
            if not todo:
                colour[node] = BLACK
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop(0)
            if colour.get(nxt, BLACK) == GREY:
                return path[path.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                colour[nxt] = GREY
                path.append(nxt)
                stack.append((nxt, sorted(graph[nxt])))
    return None


def test_the_graph_sees_lazy_relative_and_package_imports():
    g = import_graph()
    # ``from .hfcache import …`` at the top of the catalog
    assert "llmlab.models.hfcache" in g["llmlab.models.catalog"]
    # an import inside a function: the training run's memory estimate
    assert any(m.startswith("llmlab.models.") for m in g["llmlab.finetune.train"])
    # ``from ..choices import model_names`` resolves two dots up
    assert "llmlab.webui.choices" in g["llmlab.webui.screens.chat"]


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_llmlab_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    if cycle:
        print("import cycle: " + " → ".join(cycle))
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])
