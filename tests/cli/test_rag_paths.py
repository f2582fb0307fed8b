"""How the rag commands print document paths (``cli/rag._short``)."""
import os

from llmlab.cli.rag import _short
from llmlab.datasets import bundled_root


def test_bundled_documents_are_named_by_their_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a folder that holds none of them, as in the course notebook
    doc = bundled_root() / "course_rag" / "docs" / "17_library_rules.md"
    assert _short(str(doc)) == os.path.join("course_rag", "docs", "17_library_rules.md")


def test_paths_under_the_current_folder_are_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _short(str(tmp_path / "a" / "b.md")) == os.path.join("a", "b.md")


def test_paths_under_home_are_abbreviated(tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert _short(str(home / "docs" / "x.md")) == "~/" + os.path.join("docs", "x.md")


def test_other_paths_stay_absolute(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home.parent)
    assert _short("/elsewhere/doc.md") == "/elsewhere/doc.md"
