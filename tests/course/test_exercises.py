"""The course's teaching structure, checked statically (no notebook runs; fast).

Every chapter notebook ends with a "연습 문제" section of at least three exercises, each answered
by a solution code cell that checks itself with ``assert``; every chapter has a "문제 해결"
(troubleshooting) section; every chapter takes its chat model from LLMLAB_COURSE_MODEL; and the
course has at least 25,000 Hangul syllables of prose (markdown cells and the course index, code
blocks and outputs not counted).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
INDEX = ROOT / "docs" / "ko" / "README.md"
MIN_PROSE_SYLLABLES = 25_000
MIN_EXERCISES = 3

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$", re.M)
_FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1\s*$", re.M | re.S)
_EXERCISE = re.compile(r"^\s*(\*\*연습\s*\d+\.?\*\*|#{2,6}\s*연습\s*\d+)", re.M)


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _headings(text: str) -> list[str]:
    return [m.group(2) for m in _HEADING.finditer(_FENCE.sub("", text))]


def hangul_prose(markdown: str) -> int:
    """Hangul syllables (가–힣) outside fenced code blocks."""
    return len(re.findall("[가-힣]", _FENCE.sub("", markdown)))


def exercises(cells: list[dict]) -> list[tuple[str, list[str]]]:
    """(exercise text, solution code cells) for each exercise after the "연습 문제" heading."""
    start = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                  and "연습 문제" in _headings(_source(c))), None)
    if start is None:
        return []
    found: list[tuple[str, list[str]]] = []
    for cell in cells[start:]:
        text = _source(cell)
        if cell["cell_type"] == "markdown":
            if _EXERCISE.search(text):
                found.append((text.strip().splitlines()[0], []))
            elif found and _headings(text):
                break  # a later section ends the exercises
        elif cell["cell_type"] == "code" and found:
            found[-1][1].append(text)
    return found


ids = [p.stem for p in NOTEBOOKS]


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 7, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_exercises_with_checked_solutions(notebook: Path):
    found = exercises(_cells(notebook))
    assert len(found) >= MIN_EXERCISES, (
        f"{notebook.name}: needs a '## 연습 문제' heading followed by at least {MIN_EXERCISES} exercises "
        f"('**연습 N.** …'), found {len(found)}")
    for text, solutions in found:
        assert any(re.search(r"^\s*assert\b", s, re.M) for s in solutions), (
            f"{notebook.name}: exercise {text[:40]!r} has no solution code cell with an assert")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_troubleshooting_section(notebook: Path):
    headings = [h for c in _cells(notebook) if c["cell_type"] == "markdown" for h in _headings(_source(c))]
    assert "문제 해결" in headings, f"{notebook.name}: no '## 문제 해결' (troubleshooting) heading"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_chapter_model_comes_from_the_environment(notebook: Path):
    code = "\n".join(_source(c) for c in _cells(notebook) if c["cell_type"] == "code")
    assert re.search(r"os\.environ\.get\(\s*[\"']LLMLAB_COURSE_MODEL[\"']", code), (
        f"{notebook.name}: the chapter must take its model from LLMLAB_COURSE_MODEL")


def test_course_prose_is_long_enough():
    per_chapter = {p.stem: sum(hangul_prose(_source(c)) for c in _cells(p) if c["cell_type"] == "markdown")
                   for p in NOTEBOOKS}
    total = sum(per_chapter.values()) + hangul_prose(INDEX.read_text(encoding="utf-8"))
    assert total >= MIN_PROSE_SYLLABLES, f"{total} Hangul syllables of prose (< {MIN_PROSE_SYLLABLES}): {per_chapter}"


def test_the_counters_count_what_they_claim():
    """The helpers themselves: fences are skipped, and an exercise needs its own assert."""
    assert hangul_prose("가나다\n```python\n# 라마바\n```\n사") == 4
    cells = [{"cell_type": "markdown", "source": "## 연습 문제"},
             {"cell_type": "markdown", "source": "**연습 1.** 하나"},
             {"cell_type": "code", "source": "assert 1 + 1 == 2"},
             {"cell_type": "markdown", "source": "**연습 2.** 둘"},
             {"cell_type": "code", "source": "print(2)"},
             {"cell_type": "markdown", "source": "## 다음 장"},
             {"cell_type": "markdown", "source": "**연습 3.** 셋 (다음 절이라 세지 않음)"}]
    found = exercises(cells)
    assert [t for t, _ in found] == ["**연습 1.** 하나", "**연습 2.** 둘"]
    assert found[1][1] == ["print(2)"]
