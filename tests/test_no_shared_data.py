"""A user's clone has no measurement folder beside it: nothing shipped or tested may read it.

Every text file under src/, tests/, docs/, notebooks/, examples/ and tools/ is searched for the
folder's relative path and its data subfolder (:data:`NEEDLES`). Only bench/ may use that folder
(with a fallback to the bundled sets), and it is not searched here. The needles are built from
their parts so that this file, which names them, does not read as a user of the folder.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEARCHED = ("src", "tests", "docs", "notebooks", "examples", "tools")
FOLDER = "sha" + "red"  # the measurement folder beside the checkout
NEEDLES = (f"../{FOLDER}", f"{FOLDER}/data")
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".txt", ".yaml", ".yml", ".toml", ".json", ".jsonl", ".sh", ".cfg", ".ini",
                 ".html", ".j2", ".jinja", ""}


def offenders() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for top in SEARCHED:
        for p in sorted((ROOT / top).rglob("*")):
            if not p.is_file() or p.suffix.lower() not in TEXT_SUFFIXES or p == Path(__file__).resolve():
                continue
            if "__pycache__" in p.parts:
                continue
            try:
                text = p.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            hits = [n for n in NEEDLES if n in text]
            if hits:
                found[p.relative_to(ROOT).as_posix()] = hits
    return found


def test_nothing_outside_bench_reads_the_shared_folder():
    bad = offenders()
    assert bad == {}, f"these files name the measurement folder a user's clone does not have: {bad}"


def test_the_search_finds_a_file_that_names_the_folder(tmp_path, monkeypatch):
    """The guard itself can fail: a file naming the folder is reported (its needle with it)."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(f"data: {NEEDLES[0]}/ko_docs\n", encoding="utf-8")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert offenders() == {"docs/page.md": [NEEDLES[0]]}
