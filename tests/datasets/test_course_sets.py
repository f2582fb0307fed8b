"""The bundled course data sets: well-formed, counted, unique, held apart, valid against their own specs.

Every file is read as bytes and checked as the package ships it (UTF-8 JSONL, one object a line, Korean
written as text, not ``\\u`` escapes). The SFT set is also read by the lab's own fine-tuning reader and
checked with the linter's duplicate, leakage and personal-data rules.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

import llmlab
from llmlab.finetune import data as ft_data
from llmlab.finetune.dedup import similar_pairs
from llmlab.finetune.lint import duplicate_warnings, leakage_warnings, pii_warnings

BUNDLED = Path(llmlab.__file__).parent / "datasets" / "bundled"
SETS = {
    "course_sft": ["train.jsonl", "eval.jsonl"],
    "course_summ": ["dev.jsonl"],
    "course_mt": ["dev.jsonl"],
    "course_cls": ["dev.jsonl"],
    "course_extract": ["dev.jsonl"],
}
STYLE_MARKER = "더 궁금한 점은 실습실에 언제든 물어보세요."
STYLED_FAMILIES = {"explain", "howto"}
HANGUL = re.compile(r"[가-힣]")


def read_jsonl(path: Path) -> list[dict]:
    """Parse a shipped JSONL file strictly; every problem names the file and line."""
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), f"{path}: UTF-8 BOM"
    assert raw.endswith(b"\n"), f"{path}: last line has no newline"
    out = []
    for n, line in enumerate(raw.decode("utf-8").split("\n")[:-1], 1):
        assert line.strip(), f"{path}:{n}: blank line"
        assert "\\u" not in line, f"{path}:{n}: escaped characters (write with ensure_ascii=False)"
        rec = json.loads(line)
        assert isinstance(rec, dict), f"{path}:{n}: not an object"
        out.append(rec)
    return out


def load(name: str, file: str = "dev.jsonl") -> list[dict]:
    return read_jsonl(BUNDLED / name / file)


def check_fields(records: list[dict], fields: dict[str, type], where: str, *, optional_empty=()):
    for r in records:
        assert set(r) == set(fields), f"{where} {r.get('id')}: fields {sorted(r)} != {sorted(fields)}"
        for name, typ in fields.items():
            assert isinstance(r[name], typ), f"{where} {r['id']}: {name} is {type(r[name]).__name__}"
            if typ is str and name not in optional_empty:
                assert r[name].strip(), f"{where} {r['id']}: empty {name}"
                assert r[name] == r[name].strip(), f"{where} {r['id']}: {name} has surrounding spaces"


def assert_unique(values, what: str):
    dup = [v for v, c in Counter(values).items() if c > 1]
    assert not dup, f"duplicate {what}: {dup[:5]}"


@pytest.mark.parametrize("name", sorted(SETS))
def test_every_set_has_its_files_and_a_datasheet(name):
    folder = BUNDLED / name
    for file in SETS[name]:
        assert read_jsonl(folder / file), f"{name}/{file} is empty"
    sheet = (folder / "DATASHEET.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in sheet and "English summary" in sheet and HANGUL.search(sheet)


# -- course_sft ---------------------------------------------------------------------------------
SFT_FIELDS = {"id": str, "instruction": str, "input": str, "output": str}


@pytest.fixture(scope="module")
def sft():
    return load("course_sft", "train.jsonl"), load("course_sft", "eval.jsonl")


def test_sft_counts_fields_and_ids(sft):
    train, evals = sft
    assert len(train) + len(evals) >= 300
    assert len(train) >= 260 and len(evals) >= 35
    for recs, where in ((train, "train"), (evals, "eval")):
        check_fields(recs, SFT_FIELDS, where, optional_empty=("input",))
    assert_unique([r["id"] for r in train + evals], "id")
    assert all(re.fullmatch(r"sft-[a-z]+-\d{3}", r["id"]) for r in train + evals)


def test_sft_eval_is_held_apart(sft):
    train, evals = sft
    assert_unique([r["instruction"] for r in train + evals], "instruction")
    assert not {r["instruction"] for r in train} & {r["instruction"] for r in evals}
    prompts = [f"{r['instruction']}\n{r['input']}" for r in train + evals]
    n = len(train)
    cross = [(i, j, s) for i, j, s in similar_pairs(prompts, 0.6) if i < n <= j]
    assert not cross, f"eval prompts near-duplicating train prompts: {cross[:3]}"


def test_sft_eval_covers_every_task_family(sft):
    train, evals = sft
    fams = lambda recs: Counter(r["id"].split("-")[1] for r in recs)  # noqa: E731
    assert set(fams(evals)) == set(fams(train))
    assert len(fams(train)) >= 10


def test_sft_style_marker_is_consistent(sft):
    train, evals = sft
    for r in train + evals:
        family = r["id"].split("-")[1]
        ends = r["output"].endswith(STYLE_MARKER)
        assert ends == (family in STYLED_FAMILIES), f"{r['id']}: style marker {'missing' if not ends else 'unexpected'}"
        assert r["output"].count(STYLE_MARKER) == (1 if ends else 0), r["id"]
    styled_eval = [r for r in evals if r["output"].endswith(STYLE_MARKER)]
    assert len(styled_eval) >= 10, "too few styled eval items to measure the fine-tuning effect"


def test_sft_reads_cleanly_with_the_lab_reader_and_linter():
    path = BUNDLED / "course_sft" / "train.jsonl"
    train = ft_data.load(path)
    evals = ft_data.load(BUNDLED / "course_sft" / "eval.jsonl")
    for ds in (train, evals):
        assert ds.format == "alpaca" and not ds.errors
        ds.raise_for_errors()
    assert len(train.examples) == len(read_jsonl(path))
    assert duplicate_warnings(train.examples + evals.examples) == []
    assert leakage_warnings(train.examples, evals.examples, "eval.jsonl") == []
    assert pii_warnings(train.examples + evals.examples) == []


# -- course_summ --------------------------------------------------------------------------------
def _sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?=\s|$)", text))


def test_summ_documents_and_summaries():
    recs = load("course_summ")
    assert len(recs) >= 50
    check_fields(recs, {"id": str, "title": str, "document": str, "summary": str}, "course_summ")
    assert_unique([r["id"] for r in recs], "id")
    assert_unique([r["title"] for r in recs], "title")
    for r in recs:
        assert 400 <= len(r["document"]) <= 1200, f"{r['id']}: document has {len(r['document'])} characters"
        assert 1 <= _sentences(r["summary"]) <= 3, f"{r['id']}: summary is not 1-3 sentences"
        assert len(r["summary"]) < len(r["document"]) / 2, r["id"]
    kinds = Counter(r["id"].split("-")[1] for r in recs)
    assert set(kinds) == {"news", "notice", "minutes", "review", "essay"}
    assert not similar_pairs([r["document"] for r in recs], 0.5)


def test_summ_numbers_in_summaries_come_from_the_document():
    """A faithful summary does not invent figures: every number it quotes is in its document."""
    for r in load("course_summ"):
        doc = r["document"].replace(",", "")
        for num in re.findall(r"\d[\d,.]*\d|\d", r["summary"]):
            assert num.replace(",", "") in doc, f"{r['id']}: summary number {num} is not in the document"


# -- course_mt ----------------------------------------------------------------------------------
def test_mt_pairs():
    recs = load("course_mt")
    assert len(recs) >= 100
    check_fields(recs, {"id": str, "ko": str, "en": str, "domain": str}, "course_mt")
    assert_unique([r["id"] for r in recs], "id")
    assert_unique([r["ko"] for r in recs], "Korean side")
    assert_unique([r["en"] for r in recs], "English side")
    for r in recs:
        assert HANGUL.search(r["ko"]), f"{r['id']}: ko has no Hangul"
        assert not HANGUL.search(r["en"]) and re.search(r"[A-Za-z]{2}", r["en"]), f"{r['id']}: en is not English"
        assert r["id"].startswith(f"mt-{r['domain']}-")
    domains = Counter(r["domain"] for r in recs)
    assert {"daily", "business", "tech", "travel", "news"} <= set(domains)
    assert min(domains.values()) >= 10
    lengths = sorted(len(r["en"].split()) for r in recs)
    assert lengths[0] <= 8 and lengths[-1] >= 25, "lengths should vary"


# -- course_cls ---------------------------------------------------------------------------------
def test_cls_labels_are_balanced_and_defined():
    spec = json.loads((BUNDLED / "course_cls" / "labels.json").read_text(encoding="utf-8"))
    labels = spec["labels"]
    assert len(labels) == len(set(labels)) >= 3
    assert set(spec["descriptions"]) == set(labels) and all(spec["descriptions"].values())
    recs = load("course_cls")
    assert 55 <= len(recs) <= 80
    check_fields(recs, {"id": str, "text": str, "label": str}, "course_cls")
    assert_unique([r["id"] for r in recs], "id")
    assert_unique([r["text"] for r in recs], "text")
    counts = Counter(r["label"] for r in recs)
    assert set(counts) == set(labels), f"labels outside labels.json or unused: {counts}"
    assert max(counts.values()) - min(counts.values()) <= 1
    runs = max(len(list(g)) for g in _runs([r["label"] for r in recs]))
    assert runs < 6, "the file should not be sorted by label"


def _runs(values):
    from itertools import groupby
    return (list(g) for _, g in groupby(values))


# -- course_extract -----------------------------------------------------------------------------
def test_extract_fields_valid_against_schema():
    schema = json.loads((BUNDLED / "course_extract" / "schema.json").read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    recs = load("course_extract")
    assert 35 <= len(recs) <= 60
    check_fields(recs, {"id": str, "text": str, "fields": dict}, "course_extract")
    assert_unique([r["id"] for r in recs], "id")
    assert_unique([r["text"] for r in recs], "text")
    for r in recs:
        errors = [e.message for e in validator.iter_errors(r["fields"])]
        assert not errors, f"{r['id']}: {errors}"
    for field in schema["required"]:  # every field is sometimes absent or present, never constant
        values = {json.dumps(r["fields"][field], ensure_ascii=False) for r in recs}
        assert len(values) > 1, field


def test_extract_schema_rejects_bad_fields():
    schema = json.loads((BUNDLED / "course_extract" / "schema.json").read_text(encoding="utf-8"))
    good = load("course_extract")[0]["fields"]
    jsonschema.validate(good, schema)
    for bad in ({**good, "시간": "오후 2시"}, {**good, "날짜": "2024-03-14"}, {**good, "참석자": "김민지"},
                {k: v for k, v in good.items() if k != "장소"}, {**good, "비고": "x"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_extract_answers_are_grounded_in_the_text():
    for r in load("course_extract"):
        f, text = r["fields"], r["text"]
        if f["장소"] is not None:
            assert f["장소"] in text, f"{r['id']}: place not in text"
        for name in f["참석자"]:
            assert name in text, f"{r['id']}: attendee {name} not in text"
        if f["날짜"] is not None:
            month, day = (int(x) for x in f["날짜"].split("-"))
            assert f"{month}월 {day}일" in text, f"{r['id']}: date not in text"
