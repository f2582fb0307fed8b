"""A user's clone has no ``../shared`` beside it: nothing shipped or tested may read it.

Every text file under src/, tests/, docs/, notebooks/, examples/ and tools/ is searched for
``../shared`` and ``shared/data``. Only bench/ may use that folder (with a fallback to the
bundled sets), and it is not searched here.

PENDING lists files that still name it because another change ports them (the course
notebooks and the pages generated from them). It may only shrink: a listed file that no longer
names the folder fails the second test, so the list cannot go stale and hide a regression.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEARCHED = ("src", "tests", "docs", "notebooks", "examples", "tools")
NEEDLES = ("../shared", "shared/data")
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".txt", ".yaml", ".yml", ".toml", ".json", ".jsonl", ".sh", ".cfg", ".ini",
                 ".html", ".j2", ".jinja", ""}
#: files still waiting for a port (empty: the course notebooks and pages read the bundled sets now)
PENDING: set[str] = set()


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
    bad = {f: hits for f, hits in offenders().items() if f not in PENDING}
    assert bad == {}, f"these files name the measurement folder a user's clone does not have: {bad}"


def test_the_pending_list_only_names_files_that_still_need_porting():
    found = offenders()
    stale = sorted(f for f in PENDING if f not in found)
    assert stale == [], f"ported: remove {stale} from PENDING in {Path(__file__).name}"
