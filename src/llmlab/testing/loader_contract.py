"""The contract every document loader (:data:`llmlab.rag.loaders.LOADERS`) must pass.

Subclass :class:`LoaderContract` in a test module, set ``suffix`` and ``expected`` (a Korean
phrase the sample holds), say whether the format carries ``pages`` / ``sections``, and
provide a ``sample`` fixture (a path to a real file of that type). It checks what ingest
relies on: Documents with non-empty text and stable, unique ids; page and section marks
inside the text where the format has them; Korean decoded exactly (also from CP949 and
UTF-16 for text formats: :class:`TextLoaderContract`); and a corrupt or empty file becoming a :class:`Skipped` entry
(or the loader's :class:`~llmlab.errors.InputFileError` naming the file), never a crash.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from llmlab.errors import InputFileError
from llmlab.rag.loaders import LOADERS, load_file
from llmlab.text import decode_text
from llmlab.rag.types import Document, Skipped

#: bytes no loader can read as its format (NULs for text, no PDF/ZIP structure)
CORRUPT = b"\x00\x01\x02\xff\xfe not a document %PDF-1.4 PK\x03\x04 \x00\x00"


def documents(path: Path) -> list[Document]:
    out = list(load_file(path))
    assert out and all(isinstance(d, Document) for d in out), f"{path.name}: {out[:3]}"
    return out


class LoaderContract:
    """Behavioural tests of one loader. Set the class attributes and provide ``sample``."""

    suffix: str = ""
    expected: str = ""  # a Korean phrase the sample's text holds
    pages: bool = False  # the format has page numbers (PDF)
    sections: bool = False  # the format has headings (Markdown, HTML, DOCX)

    @pytest.fixture
    def sample(self) -> Path:  # pragma: no cover - subclasses provide it
        raise NotImplementedError

    def test_the_suffix_is_registered(self):
        assert self.suffix in LOADERS

    def test_documents_have_text_source_and_the_korean_phrase(self, sample):
        docs = documents(sample)
        assert all(d.text.strip() for d in docs)
        assert all(Path(d.source).name == sample.name or d.source == str(sample) for d in docs)
        assert any(self.expected in d.text for d in docs), f"{self.expected!r} not in the loaded text"
        assert "\ufffd" not in "".join(d.text for d in docs), "a replacement character: something decoded wrongly"

    def test_ids_are_stable_and_unique(self, sample, tmp_path):
        first, again = documents(sample), documents(sample)
        assert [d.id for d in first] == [d.id for d in again]
        assert len({d.id for d in first}) == len(first) and all(d.id for d in first)
        assert [d.text for d in first] == [d.text for d in again]

    def test_page_and_section_marks(self, sample):
        for d in documents(sample):
            for marks in (d.pages, d.sections):
                offsets = [o for o, _ in marks]
                assert offsets == sorted(offsets) and all(0 <= o <= len(d.text) for o in offsets)
            if self.pages:
                assert d.pages and all(isinstance(p, int) and p >= 1 for _, p in d.pages)
                assert d.page_at(len(d.text) - 1) is not None
            if self.sections:
                assert d.sections and all(isinstance(s, str) and s.strip() for _, s in d.sections)

    def test_a_corrupt_file_is_skipped_by_name(self, tmp_path):
        bad = tmp_path / f"broken{self.suffix}"
        bad.write_bytes(CORRUPT)
        out = list(load_file(bad))
        assert out and all(isinstance(s, Skipped) and "broken" in s.path and s.reason for s in out), out
        try:  # the loader itself: Skipped entries or an InputFileError naming the file, nothing else
            direct = list(LOADERS.get(self.suffix)(bad))
        except InputFileError as e:
            assert "broken" in str(e)
        else:
            assert all(isinstance(s, Skipped) for s in direct), direct

    def test_an_empty_file_is_skipped(self, tmp_path):
        empty = tmp_path / f"empty{self.suffix}"
        empty.write_bytes(b"")
        [s] = list(load_file(empty))
        assert isinstance(s, Skipped) and "empty" in s.reason



class TextLoaderContract(LoaderContract):
    """A loader of a plain-text format (txt, md, html, jsonl): any Korean encoding decodes."""

    @pytest.mark.parametrize("encoding", ["cp949", "utf-16", "utf-8-sig"])
    def test_korean_in_other_encodings(self, sample, tmp_path, encoding):
        text, _ = decode_text(sample.read_bytes())
        utf8 = tmp_path / "utf8" / sample.name
        utf8.parent.mkdir()
        utf8.write_text(text, encoding="utf-8")
        other = tmp_path / encoding / sample.name
        other.parent.mkdir()
        other.write_bytes(text.encode(encoding))
        assert [d.text for d in documents(other)] == [d.text for d in documents(utf8)]
