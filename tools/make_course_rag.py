"""Build the generated parts of the bundled ``course_rag`` data set (llmlab's own Korean RAG data).

What it writes under ``src/llmlab/datasets/bundled/course_rag/``:
  docs/*.docx, docs/*.pdf and the CP949 .txt from ``course_rag_sources.py`` (the .md/.txt/.html
  documents are hand-written files and are not touched), ``questions.jsonl`` from
  ``course_rag_questions.py`` with each answer's character offset in the text that
  ``llmlab.rag.loaders`` extracts, and ``eval/`` (the corpus and questions ``llmlab rag eval`` reads).

Needs python-docx and pypdf (llmlab's rag extra) and, for the PDFs, fpdf2 and the Nanum
Gothic font (Debian: ``apt-get install fonts-nanum``; ``pip install fpdf2``)::

    PYTHONPATH=src python tools/make_course_rag.py            # everything
    PYTHONPATH=src python tools/make_course_rag.py --questions-only
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import course_rag_questions  # noqa: E402
import course_rag_sources as S  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "src" / "llmlab" / "datasets" / "bundled" / "course_rag"
DOCS = ROOT / "docs"
FONT_DIR = Path("/usr/share/fonts/truetype/nanum")
FIXED_DATE = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)
TYPES = ("factoid", "number", "paraphrase", "negation", "multi_sentence", "near_duplicate", "unanswerable")


def write_docx(spec: dict) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = spec["title"]
    d.core_properties.author = "솔가람테크 인사팀 (가상의 회사)"
    d.core_properties.created = d.core_properties.modified = FIXED_DATE  # same bytes on every run
    d.core_properties.last_modified_by = "llmlab"
    for kind, content in spec["blocks"]:
        if kind in ("h1", "h2"):
            d.add_heading(content, level=int(kind[1]))
        elif kind == "p":
            d.add_paragraph(content)
        elif kind == "table":
            t = d.add_table(rows=len(content), cols=len(content[0]))
            t.style = "Table Grid"
            for r, row in enumerate(content):
                for c, cell in enumerate(row):
                    t.cell(r, c).text = cell
    d.save(str(DOCS / spec["file"]))
    _fix_zip_times(DOCS / spec["file"])


def _fix_zip_times(path: Path) -> None:
    """Rewrite a .docx (a zip) with fixed member times, so rebuilding it gives the same bytes."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name, date_time=FIXED_DATE.timetuple()[:6]), data,
                       compress_type=zipfile.ZIP_DEFLATED)


def write_pdf(spec: dict) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(spec["title"])
    pdf.set_author("주식회사 솔가람테크 (가상의 회사)")
    pdf.set_creator("llmlab tools/make_course_rag.py")
    pdf.set_creation_date(FIXED_DATE)
    pdf.add_font("Nanum", fname=str(FONT_DIR / "NanumGothic.ttf"))
    pdf.add_font("Nanum", style="B", fname=str(FONT_DIR / "NanumGothicBold.ttf"))
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    for kind, content in spec["blocks"]:
        if kind == "h1":
            pdf.set_font("Nanum", "B", 16)
            pdf.multi_cell(0, 10, content, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        elif kind == "h2":
            pdf.set_font("Nanum", "B", 12)
            pdf.ln(2)
            pdf.multi_cell(0, 8, content, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.set_font("Nanum", "", 10.5)
            pdf.multi_cell(0, 6.5, content, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(DOCS / spec["file"]))


def write_cp949(spec: dict) -> None:
    (DOCS / spec["file"]).write_bytes(spec["text"].encode("cp949"))


def load_texts() -> dict[str, str]:
    """Each document's text exactly as llmlab's loaders extract it, by file name."""
    from llmlab.rag.loaders import load_file
    from llmlab.rag.types import Document

    texts = {}
    for f in sorted(DOCS.iterdir()):
        docs = list(load_file(f))
        if len(docs) != 1 or not isinstance(docs[0], Document):
            raise SystemExit(f"{f.name}: the loader gave {docs!r}")
        texts[f.name] = docs[0].text
    return texts


def build_questions(texts: dict[str, str]) -> list[dict]:
    rows, problems = [], []
    per_type: dict[str, int] = defaultdict(int)
    for n, (qtype, doc, question, answers, *rest) in enumerate(course_rag_questions.QUESTIONS, start=1):
        also_in = rest[0] if rest else []
        for other in also_in:
            if other not in texts or other == doc:
                problems.append(f"#{n}: bad also_in document {other!r}")
        if qtype not in TYPES:
            problems.append(f"#{n}: unknown type {qtype!r}")
            continue
        answerable = qtype != "unanswerable"
        starts, plain = [], []
        if answerable:
            if doc not in texts:
                problems.append(f"#{n}: no document {doc!r}")
                continue
            for a in answers:
                a, after = a if isinstance(a, tuple) else (a, "")
                j = texts[doc].find(after)
                i = texts[doc].find(a, j + len(after)) if j >= 0 else -1
                if i < 0:
                    problems.append(f"#{n} {question!r}: {a!r} not in {doc}" + (f" after {after!r}" if after else ""))
                plain.append(a)
                starts.append(i)
            if not answers:
                problems.append(f"#{n}: answerable but no answers")
        elif doc is not None or answers:
            problems.append(f"#{n}: unanswerable questions have no doc and no answers")
        # stratified: alternate calib/test within each type
        split = "calib" if per_type[qtype] % 2 == 0 else "test"
        per_type[qtype] += 1
        rows.append({"id": f"crq-{n:03d}", "question": question, "answers": plain, "doc": doc,
                     "answer_starts": starts, "answerable": answerable, "type": qtype, "split": split,
                     "context_id": doc, "also_in": list(also_in)})
    if problems:
        raise SystemExit("\n".join(problems))
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions-only", action="store_true", help="Do not rewrite the .docx/.pdf/CP949 files.")
    args = ap.parse_args()
    if not args.questions_only:
        for spec in (S.DOCX_FAMILY, S.DOCX_RESIGN):
            write_docx(spec)
        for spec in (S.PDF_INCIDENT, S.PDF_PRIVACY):
            write_pdf(spec)
        write_cp949(S.CP949_PARKING)
    texts = load_texts()
    rows = build_questions(texts)
    write_jsonl(ROOT / "questions.jsonl", rows)
    # `llmlab rag eval` format: a corpus whose ids are the file names, and the answerable questions.
    write_jsonl(ROOT / "eval" / "corpus.jsonl",
                [{"id": name, "title": name.rsplit(".", 1)[0], "text": text} for name, text in texts.items()])
    keep = ("id", "question", "answers", "answer_starts", "context_id", "also_in", "type", "split")
    write_jsonl(ROOT / "eval" / "questions.jsonl", [{k: r[k] for k in keep} for r in rows if r["answerable"]])
    counts = Counter((r["type"], r["split"]) for r in rows)
    print(f"{len(texts)} documents, {len(rows)} questions")
    for t in TYPES:
        print(f"  {t:<15} calib {counts[(t, 'calib')]:>3}  test {counts[(t, 'test')]:>3}")


if __name__ == "__main__":
    main()
