"""Dataset reading: malformed lines and fields are named."""
import pytest

from llmlab.errors import InputFileError
from llmlab.eval.data import FORMATS, read_jsonl, read_text


def write(tmp_path, text, name="d.jsonl"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_reads_records_and_fills_ids(tmp_path):
    p = write(tmp_path, '{"ko": "안녕", "en": "hi"}\n\n{"id": "x", "ko": "네", "en": "yes"}\n')
    recs = read_jsonl(p, FORMATS["translate"])
    assert [r["id"] for r in recs] == ["line-1", "x"]
    assert len(read_jsonl(p, FORMATS["translate"], limit=1)) == 1


@pytest.mark.parametrize("text, line, field, words", [
    ('{"ko": "a", "en": "b"}\n{"ko": "a"\n', 2, None, "invalid JSON"),
    ('{"ko": "a", "en": "b"}\n{"ko": "a"}\n', 2, "en", "missing field"),
    ('{"ko": "a", "en": 3}\n', 1, "en", "expected str, got int"),
    ('[1, 2]\n', 1, None, "expected a JSON object"),
])
def test_errors_name_file_line_and_field(tmp_path, text, line, field, words):
    p = write(tmp_path, text)
    with pytest.raises(InputFileError) as e:
        read_jsonl(p, FORMATS["translate"])
    assert e.value.line == line and e.value.field == field and words in str(e.value) and str(p) in str(e.value)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(InputFileError, match="empty"):
        read_jsonl(write(tmp_path, "\n"))
    with pytest.raises(InputFileError, match="not found"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_read_text_for_perplexity(tmp_path):
    assert read_text(write(tmp_path, "가나다\n", "t.txt")) == "가나다\n"
    assert read_text(write(tmp_path, '{"text": "a"}\n{"document": "b"}\n')) == "a\n\nb"


def _records(path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def test_bundled_datasets_match_the_formats(course_mt, course_summ, course_rag):
    """Every record of the bundled sets passes the format check the evaluators apply."""
    for path, fmt in [(course_mt / "dev.jsonl", "translate"), (course_summ / "dev.jsonl", "summarize"),
                      (course_rag / "eval" / "questions.jsonl", "qa"), (course_rag / "eval" / "corpus.jsonl", "contexts")]:
        assert len(read_jsonl(path, FORMATS[fmt])) == _records(path) > 0, path
