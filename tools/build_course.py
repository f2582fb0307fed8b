"""Build the Korean course: execute notebooks/*.ipynb and render docs/ko/*.md from them.

Usage (from the repository root, with the project's virtualenv):

    .venv/bin/python tools/build_course.py                 # execute every notebook into build/course/
    .venv/bin/python tools/build_course.py 01_basics 02    # only these (stem or stem prefix)
    .venv/bin/python tools/build_course.py --out DIR       # … into DIR/notebooks/ and DIR/docs/ko/
    .venv/bin/python tools/build_course.py --in-place 02   # maintainers: update the committed notebook and page
    .venv/bin/python tools/build_course.py --check         # render from the stored outputs, compare, exit 1 on drift
    .venv/bin/python tools/build_course.py --render-only   # re-render pages from stored outputs (no execution)

Running a chapter does not touch the repository: the executed notebook and its page go to an output
folder (build/course/ by default, ignored by git) unless a maintainer asks for --in-place.

Each notebook runs in a fresh kernel of this interpreter, with cwd notebooks/, a fresh temporary
LLMLAB_HOME, one thread (OMP_NUM_THREADS=1, LLMLAB_THREADS=1) and offline hubs. The executed notebook
(outputs stored) is written out, and <stem>.md is rendered from it: a generated-file header,
markdown cells verbatim, code cells as ```python blocks (a cell of only ``!shell`` lines as ```bash),
text outputs as ```text blocks (long outputs trimmed with a visible "…"). Pages are *generated*: edit the
notebook, then rebuild.

Cell tags (cell metadata "tags"): ``remove-cell`` leaves the cell out of the page, ``remove-output``
keeps the code but not its output, ``remove-input`` keeps the output but not the code.
Outputs of MIME type text/markdown are rendered as Markdown (e.g. a results table).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PAGES = ROOT / "docs" / "ko"
DEFAULT_OUT = ROOT / "build" / "course"

MAX_OUTPUT_LINES = 40  # longer text outputs keep their head and tail around a "…" line
TAIL_LINES = 6
MAX_LINE_CHARS = 240
CELL_TIMEOUT_S = 300

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def notebook_paths(names: list[str] | None = None) -> list[Path]:
    """The course notebooks, sorted; ``names`` selects by stem or stem prefix (``01`` → 01_basics)."""
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if not names:
        return paths
    chosen: list[Path] = []
    for name in names:
        stem = Path(name).stem if name.endswith(".ipynb") else name
        hits = [p for p in paths if p.stem == stem] or [p for p in paths if p.stem.startswith(stem)]
        if not hits:
            raise SystemExit(f"no notebook matches {name!r}; have: {', '.join(p.stem for p in paths)}")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def page_path(notebook: Path) -> Path:
    """docs/ko/<stem>.md for notebooks/<stem>.ipynb."""
    return PAGES / f"{notebook.stem}.md"


# --------------------------------------------------------------------------- execution

def kernel_env(home: Path) -> dict[str, str]:
    """The environment every course notebook runs in: isolated home, one thread, offline."""
    env = dict(os.environ)
    env.update(
        LLMLAB_HOME=str(home),
        OMP_NUM_THREADS="1",
        LLMLAB_THREADS="1",
        OMP_WAIT_POLICY="passive",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONWARNINGS=env.get("PYTHONWARNINGS", "ignore::DeprecationWarning"),
    )
    # the kernel's `!llmlab …` shell commands must find this interpreter's console scripts
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def execute_notebook(path: Path, home: Path | None = None, timeout: int = CELL_TIMEOUT_S) -> Any:
    """Execute the notebook at ``path`` in a fresh python3 kernel of this interpreter; return it.

    Raises nbclient's ``CellExecutionError`` when a cell fails.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="llmlab-course-") as tmp:
        env = kernel_env(Path(home) if home else Path(tmp))
        client = NotebookClient(
            nb,
            kernel_name="python3",  # jupyter_client starts it with sys.executable
            timeout=timeout,
            record_timing=False,  # keep stored notebooks free of timestamps
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        )
        client.execute(env=env, cwd=str(NOTEBOOKS))
    return nb


# --------------------------------------------------------------------------- rendering

def _fence(text: str, lang: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text}\n{ticks}"


def trim_output(text: str) -> str:
    """Strip ANSI codes and trailing blanks; keep long outputs' head and tail around a "…" line."""
    text = _ANSI.sub("", text).replace("\r\n", "\n")
    # progress bars redraw with \r: keep the last state of each line
    lines = [line.rsplit("\r", 1)[-1].rstrip() for line in text.rstrip("\n").split("\n")]
    lines = [ln if len(ln) <= MAX_LINE_CHARS else ln[: MAX_LINE_CHARS - 1] + "…" for ln in lines]
    if len(lines) > MAX_OUTPUT_LINES:
        head = MAX_OUTPUT_LINES - TAIL_LINES - 1
        skipped = len(lines) - head - TAIL_LINES
        lines = lines[:head] + [f"… ({skipped}줄 생략 / {skipped} lines omitted)"] + lines[-TAIL_LINES:]
    return "\n".join(lines)


def _source(cell: Any) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _code_block(src: str) -> str:
    """A ```python block; a cell of only ``!command`` lines is shown as the ```bash it runs."""
    lines = [ln for ln in src.split("\n") if ln.strip()]
    if lines and all(ln.lstrip().startswith("!") for ln in lines):
        return _fence("\n".join(ln.lstrip()[1:] for ln in lines), "bash")
    return _fence(src, "python")


def _render_outputs(outputs: list[Any]) -> list[str]:
    blocks: list[str] = []
    stdout: list[str] = []

    def flush() -> None:
        if stdout and "".join(stdout).strip():
            blocks.append(_fence(trim_output("".join(stdout)), "text"))
        stdout.clear()

    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") == "stdout":  # stderr carries logs and progress bars: notebook only
                stdout.append(_text(out.get("text", "")))
            continue
        flush()
        if kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            if "text/markdown" in data:
                blocks.append(_text(data["text/markdown"]).strip())
            elif "text/plain" in data:
                blocks.append(_fence(trim_output(_text(data["text/plain"])), "text"))
        elif kind == "error":
            blocks.append(_fence(trim_output(f"{out.get('ename')}: {out.get('evalue')}"), "text"))
    flush()
    return blocks


def render_page(nb: Any, notebook_name: str, outputs: bool = True) -> str:
    """The Markdown page for a (preferably executed) notebook; ``outputs=False`` leaves outputs out."""
    stem = Path(notebook_name).stem
    header = (
        f"<!-- 생성된 파일입니다: notebooks/{stem}.ipynb 를 고치고 "
        f"`python tools/build_course.py --in-place {stem}` 로 다시 만드세요. 직접 고치지 마세요.\n"
        f"     Generated from notebooks/{stem}.ipynb by tools/build_course.py; do not edit by hand. -->"
    )
    parts = [header]
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if "remove-cell" in tags:
            continue
        src = _source(cell).strip("\n")
        if cell.cell_type == "markdown":
            if src.strip():
                parts.append(src)
        elif cell.cell_type == "code":
            if src.strip() and "remove-input" not in tags:
                parts.append(_code_block(src))
            if outputs and "remove-output" not in tags:
                parts.extend(_render_outputs(cell.get("outputs", [])))
    return "\n\n".join(parts) + "\n"


def render_from_file(path: Path, outputs: bool = True) -> str:
    """Render the page for the notebook stored at ``path`` (its stored outputs)."""
    import nbformat

    return render_page(nbformat.read(path, as_version=4), path.name, outputs=outputs)


# --------------------------------------------------------------------------- command line

def _children_cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _write_notebook(nb: Any, path: Path) -> None:
    import nbformat

    nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def targets(notebook: Path, out: Path | None) -> tuple[Path, Path]:
    """Where the executed notebook and its page go: ``out``/notebooks and ``out``/docs/ko, or the
    committed files themselves when ``out`` is None (``--in-place``)."""
    if out is None:
        return notebook, page_path(notebook)
    return out / "notebooks" / notebook.name, out / "docs" / "ko" / f"{notebook.stem}.md"


def build(notebook: Path, out: Path | None, home: Path | None = None, timeout: int = CELL_TIMEOUT_S) -> tuple[Path, Path]:
    """Execute ``notebook`` and write it and its page (see :func:`targets`); return both paths.

    Raises nbclient's ``CellExecutionError`` when a cell fails (nothing is written then).
    """
    nb = execute_notebook(notebook, home=home, timeout=timeout)
    nb_out, page_out = targets(notebook, out)
    nb_out.parent.mkdir(parents=True, exist_ok=True)
    page_out.parent.mkdir(parents=True, exist_ok=True)
    _write_notebook(nb, nb_out)
    page_out.write_text(render_page(nb, notebook.name), encoding="utf-8")
    return nb_out, page_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook stems or prefixes (default: all)")
    parser.add_argument("--check", action="store_true", help="render from stored outputs and compare; write nothing")
    parser.add_argument("--render-only", action="store_true", help="render pages from stored outputs; execute nothing")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder for executed notebooks and pages (default %(default)s)")
    parser.add_argument("--in-place", action="store_true",
                        help="maintainers: write the committed notebooks/ and docs/ko/ files instead of --out")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="seconds per cell (default %(default)s)")
    args = parser.parse_args(argv)

    paths = notebook_paths(args.names)
    if not paths:
        print(f"no notebooks in {NOTEBOOKS}", file=sys.stderr)
        return 1
    out = None if args.in_place else args.out.resolve()
    drift: list[str] = []
    for path in paths:
        if args.check:
            page = page_path(path)
            if not page.exists() or page.read_text(encoding="utf-8") != render_from_file(path):
                drift.append(str(page.relative_to(ROOT)))
            continue
        _, page = targets(path, out)
        if args.render_only:
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(render_from_file(path), encoding="utf-8")
            print(f"rendered {_shown(page)}", file=sys.stderr)
            continue
        start, cpu_start = time.perf_counter(), _children_cpu_s()
        try:
            nb_out, page = build(path, out, timeout=args.timeout)
        except Exception as exc:  # nbclient's CellExecutionError: show the failing cell, not ANSI noise
            if type(exc).__name__ != "CellExecutionError":
                raise
            print(f"{path.relative_to(ROOT)}: a cell failed; nothing written\n{_ANSI.sub('', str(exc))[-3000:]}",
                  file=sys.stderr)
            return 1
        seconds, cpu = time.perf_counter() - start, _children_cpu_s() - cpu_start
        # CPU seconds of the kernel (and its shell commands) ≈ wall time on a quiet machine with one thread
        print(f"{path.relative_to(ROOT)}: executed in {seconds:.1f} s ({cpu:.1f} s kernel CPU) -> "
              f"{_shown(nb_out)}, {_shown(page)}", file=sys.stderr)
    if drift:
        print("out of date (run `python tools/build_course.py --in-place NAME`): " + ", ".join(drift), file=sys.stderr)
        return 1
    if args.check:
        print(f"{len(paths)} page(s) match their notebooks", file=sys.stderr)
    elif out is not None:
        print(f"written under {_shown(out)} (the committed course is unchanged; --in-place updates it)", file=sys.stderr)
    return 0


def _shown(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


if __name__ == "__main__":
    sys.exit(main())
