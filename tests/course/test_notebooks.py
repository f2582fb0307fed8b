"""The Korean course (docs/ko/ + notebooks/): every notebook runs, and pages cannot drift from notebooks.

Pages are generated from the executed notebooks by tools/build_course.py. These tests check that
each committed page is exactly what the renderer makes of its committed notebook, that every
notebook executes top to bottom on the bundled models (fresh LLMLAB_HOME, one thread), and that
the prose and code a reader sees are what ran. Builds go to a temporary output folder: running a
chapter leaves the repository as it was.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

pytestmark = pytest.mark.course


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_course", ROOT / "tools" / "build_course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = _load_builder()
ids = [p.stem for p in NOTEBOOKS]


def _output_kinds(cell) -> list[str]:
    """What a code cell showed, without the values (timings and samples may vary run to run)."""
    kinds = []
    for out in cell.get("outputs", []):
        kind = out["output_type"]
        if kind == "stream":
            if out["name"] == "stdout" and "".join(out["text"]).strip():
                kinds.append("stdout")
        elif kind in ("execute_result", "display_data"):
            kinds.append("markdown" if "text/markdown" in out["data"] else "text")
        else:
            kinds.append(kind)
    return sorted(set(kinds))


def test_there_is_a_course():
    assert NOTEBOOKS, "notebooks/*.ipynb is empty"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_page_is_rendered_from_notebook(notebook: Path):
    page = builder.page_path(notebook)
    assert page.exists(), f"{page} is missing: run `python tools/build_course.py --in-place {notebook.stem}`"
    expected = builder.render_from_file(notebook)
    assert page.read_text(encoding="utf-8") == expected, (
        f"{page.relative_to(ROOT)} differs from its notebook: edit the notebook, then "
        f"`python tools/build_course.py --in-place {notebook.stem}`"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_notebook_is_stored_executed(notebook: Path):
    """Every code cell was run in order, so the page shows real outputs, none of them errors."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, f"{notebook.name}: unexecuted cells; rebuild it with tools/build_course.py --in-place"
    assert counts == sorted(counts), f"{notebook.name}: cells were run out of order"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{notebook.name}: stored error output {errors[0].ename}: {errors[0].evalue}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_page_links_resolve(notebook: Path):
    page = builder.page_path(notebook)
    if not page.exists():
        pytest.skip("page missing (reported by test_page_is_rendered_from_notebook)")
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def _snapshot() -> dict[str, bytes]:
    """The committed course files (notebooks/ and docs/ko/), to prove a build leaves them alone."""
    files = [*(ROOT / "notebooks").rglob("*"), *(ROOT / "docs" / "ko").rglob("*")]
    return {str(f.relative_to(ROOT)): f.read_bytes() for f in files if f.is_file() and "__pycache__" not in f.parts}


def test_rendering_writes_to_the_output_folder_only(tmp_path: Path):
    before = _snapshot()
    assert builder.main(["--render-only", "--out", str(tmp_path)]) == 0
    assert _snapshot() == before
    for nb in NOTEBOOKS:
        written = tmp_path / "docs" / "ko" / f"{nb.stem}.md"
        assert written.read_text(encoding="utf-8") == builder.render_from_file(nb)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_notebook_executes(notebook: Path, tmp_path: Path):
    """Run it top to bottom on the bundled models, offline, in a fresh LLMLAB_HOME, into a temporary folder."""
    import nbformat
    from nbclient.exceptions import CellExecutionError

    before = _snapshot()
    try:
        nb_out, page_out = builder.build(notebook, tmp_path / "out", home=tmp_path / "home")
    except CellExecutionError as exc:
        pytest.fail(f"{notebook.name}: a cell failed\n{exc}")
    assert _snapshot() == before, "building a chapter changed files in the repository"
    fresh = nbformat.read(nb_out, as_version=4)
    assert page_out.read_text(encoding="utf-8") == builder.render_page(fresh, notebook.name)

    committed = nbformat.read(notebook, as_version=4)
    # the prose and code a reader sees on the page are exactly what ran
    assert builder.render_page(fresh, notebook.name, outputs=False) == builder.render_page(
        committed, notebook.name, outputs=False
    )
    # every output on the page is still produced (values may vary: timings, sampled text)
    for i, (a, b) in enumerate(zip(committed.cells, fresh.cells)):
        if a.cell_type == "code":
            assert _output_kinds(b) == _output_kinds(a), (
                f"{notebook.name} cell {i}: output changed kind; rebuild with tools/build_course.py --in-place\n{a.source[:200]}"
            )


def test_course_index_lists_every_chapter():
    index = (ROOT / "docs" / "ko" / "README.md").read_text(encoding="utf-8")
    for nb in NOTEBOOKS:
        assert f"{nb.stem}.md" in index, f"docs/ko/README.md does not link {nb.stem}.md"
        assert f"notebooks/{nb.name}" in index, f"docs/ko/README.md does not link notebooks/{nb.name}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/ko/README.md" in readme, "the top-level README must link the course"
