"""Every shipped loader passes :class:`llmlab.testing.loader_contract.LoaderContract`
on a bundled course document of its format."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.text import decode_text
from llmlab.testing.loader_contract import LoaderContract, TextLoaderContract, documents

DOCS = Path(__file__).resolve().parents[3] / "src" / "llmlab" / "datasets" / "bundled" / "course_rag" / "docs"


def bundled(name: str) -> Path:
    p = DOCS / name
    assert p.is_file(), f"the bundled course document {name} is missing"
    return p


class TestText(TextLoaderContract):
    suffix, expected = ".txt", "주차권"

    @pytest.fixture
    def sample(self):
        return bundled("38_parking.txt")  # stored in CP949


class TestMarkdown(TextLoaderContract):
    suffix, expected, sections = ".md", "취업규칙", True

    @pytest.fixture
    def sample(self):
        return bundled("01_work_rules.md")


class TestHtml(TextLoaderContract):
    suffix, expected, sections = ".html", "업무 장비 지급", True

    @pytest.fixture
    def sample(self):
        return bundled("16_equipment.html")


class TestPdf(LoaderContract):
    suffix, expected, pages, sections = ".pdf", "보안사고 대응 절차", True, True

    @pytest.fixture
    def sample(self):
        return bundled("36_security_incident_response.pdf")


class TestDocx(LoaderContract):
    suffix, expected, sections = ".docx", "육아·가족돌봄", True

    @pytest.fixture
    def sample(self):
        return bundled("34_parental_support.docx")


class TestJsonl(TextLoaderContract):
    """JSON Lines corpora (one record per document) — built from two bundled documents."""

    suffix, expected = ".jsonl", "주차권"

    @pytest.fixture
    def sample(self, tmp_path):
        p = tmp_path / "corpus.jsonl"
        rows = [{"id": f.stem, "title": f.stem, "text": decode_text(f.read_bytes())[0]}
                for f in (bundled("38_parking.txt"), bundled("31_sla.txt"))]
        p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return p

    def test_record_ids_become_document_ids(self, sample):
        assert [d.id for d in documents(sample)] == ["38_parking", "31_sla"]
