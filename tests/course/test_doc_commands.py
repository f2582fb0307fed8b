"""Every shell command the docs show runs, so docs and CLI cannot drift.

Fenced ```bash / ```sh / ```shell / ```console blocks are collected from README.md, docs/*.md,
docs/ko/*.md and deploy/README.md. Each block is one of:

* **run here** — executed with bash (``set -eo pipefail``) from the repository root, with a fresh
  temporary ``LLMLAB_HOME``, ``.venv/bin`` first on PATH, one thread (``OMP_NUM_THREADS=1``,
  ``LLMLAB_THREADS=1``), offline hubs, stdin from /dev/null and a timeout; it must exit 0;
* **run by its notebook** — a block of a generated course page (docs/ko/NN.md) that renders a
  ``!command`` cell of notebooks/NN.ipynb: it already ran, in the notebook's own working folder,
  when tests/course/test_notebooks.py executed the notebook (out of that context its relative
  paths mean nothing);
* **illustrative** — preceded by ``<!-- illustrative: REASON -->`` (blank lines may separate them),
  e.g. a long-running server, a download, a GPU, the whole test suite. The reason is required.

Blocks in ```console use the lines that start with ``$ `` (the rest is output).
"""
from __future__ import annotations

import functools
import importlib.util
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "ko").glob("*.md")),
             ROOT / "deploy" / "README.md"]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
BLOCK_TIMEOUT_S = 240

pytestmark = pytest.mark.course

_FENCE = re.compile(r"^(?P<ticks>`{3,})(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=ticks)[ \t]*$", re.S | re.M)
_MARKER = re.compile(r"<!--\s*illustrative\b(?P<rest>.*?)-->", re.S)
# commands that never end, re-enter the test suite or rewrite committed files: an unmarked block with one
# fails at once (asking for a marker) instead of hanging until the timeout
_NEVER_RUN = re.compile(r"^\s*(?:make\s+(?:run|test|chat)\b|llmlab\s+serve\b|(?:\S*python\S*\s+-m\s+)?pytest\b"
                        r"|\S*python\S*\s+tools/build_course\.py\b)", re.M)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    body: str
    marker: str | None  # the illustrative reason ("" if the marker has none), None when unmarked

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def script(self) -> str:
        if self.lang != "console":
            return self.body
        lines, keep = [], False
        for ln in self.body.splitlines():
            if ln.startswith("$ "):
                lines.append(ln[2:])
                keep = ln.rstrip().endswith("\\")
            elif keep:
                lines.append(ln)
                keep = ln.rstrip().endswith("\\")
        return "\n".join(lines) if lines else self.body


def _reason(rest: str) -> str:
    rest = rest.strip()
    return rest[1:].strip() if rest.startswith(":") else ("" if not rest else rest)


def collect_blocks(path: Path) -> list[Block]:
    """The shell blocks of one Markdown file, each with the illustrative marker right before it, if any."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for m in _FENCE.finditer(text):
        lang = m.group("lang").lower()
        if lang not in SHELL_LANGS:
            continue
        before = text[: m.start()].rstrip()
        marker = None
        last = _MARKER.search(before[before.rfind("<!--"):]) if before.endswith("-->") else None
        if last is not None:
            marker = _reason(last.group("rest"))
        blocks.append(Block(path, text[: m.start()].count("\n") + 1, lang, m.group("body"), marker))
    return blocks


@functools.cache
def _load_builder():
    path = ROOT / "tools" / "build_course.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("build_course_for_doc_commands", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook_blocks(page: Path) -> set[str]:
    """The ```bash bodies a generated course page shows for its notebook's ``!command`` cells."""
    notebook = ROOT / "notebooks" / f"{page.stem}.ipynb"
    builder = _load_builder()
    if page.parent != ROOT / "docs" / "ko" or not notebook.exists() or builder is None:
        return set()
    import nbformat

    bodies = set()
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        rendered = builder._code_block(cell.source.strip("\n"))
        m = _FENCE.match(rendered + "\n")
        if m and m.group("lang") == "bash":
            bodies.add(m.group("body").strip())
    return bodies


BLOCKS = [b for f in DOC_FILES if f.exists() for b in collect_blocks(f)]
_NOTEBOOK_BODIES = {f: notebook_blocks(f) for f in DOC_FILES if f.exists()}


def kind(block: Block) -> str:
    if block.marker is not None:
        return "illustrative"
    if block.body.strip() in _NOTEBOOK_BODIES.get(block.path, set()):
        return "notebook"
    return "run"


def test_docs_have_shell_blocks():
    assert BLOCKS, "no shell blocks found: the extractor is broken"
    assert any(kind(b) == "run" for b in BLOCKS), "every block is skipped: nothing checks the docs against the CLI"


def test_every_illustrative_marker_has_a_reason_and_a_block():
    """``<!-- illustrative -->`` without a reason, or not followed by a shell block, is an error."""
    problems = []
    for path in DOC_FILES:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        marked_lines = {b.line for b in collect_blocks(path) if b.marker is not None}
        for m in _MARKER.finditer(text):
            where = f"{path.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}"
            if not _reason(m.group("rest")):
                problems.append(f"{where}: illustrative marker without a reason")
            after = text[m.end():]
            nxt = _FENCE.search(after)
            if nxt is None or after[: nxt.start()].strip():
                problems.append(f"{where}: illustrative marker not directly followed by a code block")
            elif nxt.group("lang").lower() in SHELL_LANGS:
                line = text[: m.end() + nxt.start()].count("\n") + 1
                if line not in marked_lines:
                    problems.append(f"{where}: marker not attached to the block at line {line}")
    assert not problems, "\n".join(problems)


def _env(home: Path) -> dict[str, str]:
    """The course notebooks' environment (isolated home, one thread, offline), with the project's
    .venv first on PATH and no progress bars."""
    venv_bin = ROOT / ".venv" / "bin"
    bin_dir = venv_bin if venv_bin.is_dir() else Path(sys.executable).parent
    env = _load_builder().kernel_env(home)
    env.update(TQDM_DISABLE="1", PATH=str(bin_dir) + os.pathsep + env["PATH"])
    env.pop("VIRTUAL_ENV", None)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_doc_block_runs(block: Block, tmp_path: Path):
    k = kind(block)
    if k == "illustrative":
        pytest.skip(f"illustrative: {block.marker}")
    if k == "notebook":
        pytest.skip(f"run by notebooks/{block.path.stem}.ipynb (tests/course/test_notebooks.py)")
    never = _NEVER_RUN.search(block.script())
    if never:
        pytest.fail(f"{block.id}: `{never.group(0).strip()}` starts a server, the test suite or a rebuild of the "
                    f"committed course; mark the block <!-- illustrative: REASON -->")
    script = "set -eo pipefail\nset -x\n" + block.script()
    # its own process group: a block that outlives the timeout (a server) is killed with all its children
    proc = subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=_env(tmp_path / "home"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{block.id}: still running after {BLOCK_TIMEOUT_S} s — make it cheaper or mark it "
                    f"<!-- illustrative: REASON -->\n{block.body}")
    if proc.returncode != 0:
        tail = "\n".join((out + "\n" + err).strip().splitlines()[-30:])
        pytest.fail(f"{block.id}: exit {proc.returncode} (the failing command is the last '+ …' line)\n{tail}")


# --------------------------------------------------------------------------- every llmlab line parses

def llmlab_commands(script: str) -> list[list[str]]:
    """The argument lists of the ``llmlab …`` commands in a shell script (comments, pipes and ``;`` split off)."""
    import shlex

    commands = []
    joined = re.sub(r"\\\n\s*", " ", script)
    for line in joined.splitlines():
        try:
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";|&<>")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            tokens = list(lexer)
        except ValueError:
            continue
        current: list[str] = []
        for tok in [*tokens, ";"]:
            if tok and set(tok) <= set(";|&<>"):
                while current and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", current[0]):
                    current.pop(0)  # VAR=value prefixes
                if current and current[0] == "llmlab":
                    commands.append(current[1:])
                current = []
            else:
                current.append(tok)
    return commands


def parse_cli(args: list[str]) -> None:
    """Parse ``llmlab ARGS`` with the real click commands, without running them.

    Unknown commands and options, bad choices and missing arguments raise; a path that does not
    exist here (the docs name the reader's own files) is accepted.
    """
    import click

    from llmlab.cli.main import cli

    cmd: click.Command = cli
    ctx = cmd.make_context("llmlab", list(args))
    while isinstance(cmd, click.Group):
        rest = [*ctx._protected_args, *ctx.args] if hasattr(ctx, "_protected_args") else [*ctx.protected_args, *ctx.args]
        if not rest:
            return
        name, sub, rest = cmd.resolve_command(ctx, rest)
        try:
            ctx = sub.make_context(name, rest, parent=ctx)
        except click.BadParameter as exc:
            if "does not exist" in str(exc.message):
                return
            raise
        cmd = sub


LLMLAB_LINES = [(b, args) for b in BLOCKS for args in llmlab_commands(b.script())]


def test_doc_commands_are_extracted():
    assert any(args[:2] == ["rag", "ingest"] for _, args in LLMLAB_LINES)


@pytest.mark.parametrize("block,args", LLMLAB_LINES, ids=[f"{b.id}:{' '.join(a[:2])}" for b, a in LLMLAB_LINES])
def test_every_llmlab_command_in_the_docs_parses(block: Block, args: list[str]):
    """Also the illustrative ones: a renamed command or option breaks the docs even when they cannot run here."""
    import click

    try:
        parse_cli(args)
    except click.exceptions.Exit:
        pass  # --help, --version
    except click.ClickException as exc:
        pytest.fail(f"{block.id}: `llmlab {' '.join(args)}` does not parse: {exc.format_message()}")
