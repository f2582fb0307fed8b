"""Reading fine-tuning data: every format, and every broken-file fault with its line number."""
from __future__ import annotations

import json

import pytest

from llmlab.errors import InputFileError, RegistryError
from llmlab.finetune import data

ALPACA = {"instruction": "세 가지 기본 색은?", "input": "", "output": "빨강, 파랑, 노랑입니다."}


def test_alpaca_jsonl_becomes_a_conversation(write_jsonl):
    p = write_jsonl("a.jsonl", [ALPACA, {"instruction": "번역하세요", "input": "hello", "output": "안녕", "system": "짧게."}])
    ds = data.load(p)
    assert ds.format == "alpaca" and not ds.errors and ds.n_records == 2
    first, second = ds.examples
    assert [(m.role, m.content) for m in first.messages] == [("user", ALPACA["instruction"]),
                                                             ("assistant", ALPACA["output"])]
    assert [m.role for m in second.messages] == ["system", "user", "assistant"]
    assert second.messages[1].content == "번역하세요\n\nhello"
    assert second.line == 2


def test_alpaca_csv_and_json_array(tmp_path):
    csv_path = tmp_path / "a.csv"
    csv_path.write_text('instruction,input,output\n"여러 줄\n질문",,답\n질문2,,답2\n', encoding="utf-8")
    ds = data.load(csv_path)
    assert ds.format == "alpaca" and [e.line for e in ds.examples] == [2, 4]
    arr = tmp_path / "a.json"
    arr.write_text(json.dumps([ALPACA, ALPACA], ensure_ascii=False), encoding="utf-8")
    assert len(data.load(arr).examples) == 2


def test_openai_and_sharegpt_messages(write_jsonl):
    p = write_jsonl("m.jsonl", [
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                      {"role": "assistant", "content": [{"type": "text", "text": "a"}]}]},
        {"conversations": [{"from": "human", "value": "질문"}, {"from": "gpt", "value": "답"}]},
    ])
    ds = data.load(p)
    assert ds.format == "messages" and not ds.errors
    assert [m.role for m in ds.examples[1].messages] == ["user", "assistant"]
    assert ds.examples[0].messages[-1].content == "a"


def test_plain_text_paragraphs(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("첫 문단\n둘째 줄\n\n\n둘째 문단\n", encoding="utf-8")
    ds = data.load(p)
    assert ds.format == "text" and [(e.line, e.text) for e in ds.examples] == [(1, "첫 문단\n둘째 줄"), (5, "둘째 문단")]


def test_hf_datasets_on_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "ds"
    datasets.Dataset.from_list([ALPACA, ALPACA]).save_to_disk(str(folder))
    ds = data.load(folder)
    assert ds.format == "alpaca" and len(ds.examples) == 2


# -- the broken-file corpus: one file per fault class ----------------------------------------
BROKEN = [
    ("invalid_json", [ALPACA, b'{"instruction": "x", "output": '], 2, "invalid JSON"),
    ("wrong_encoding", [ALPACA, "잘못된 인코딩".encode("cp949")], 2, "not UTF-8"),
    ("missing_field", [ALPACA, {"instruction": "x"}], 2, "missing field 'output'"),
    ("empty_field", [ALPACA, {"instruction": "x", "output": "  "}], 2, "field 'output' is empty"),
    ("non_text_field", [ALPACA, {"instruction": "x", "output": 3}], 2, "must be text"),
    ("not_an_object", [ALPACA, b"[1, 2]"], 2, "expected a JSON object"),
]
BROKEN_MESSAGES = [
    ("unknown_role", {"messages": [{"role": "human", "content": "q"}, {"role": "assistant", "content": "a"}]},
     "unknown role 'human'"),
    ("ends_with_user", {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                                     {"role": "user", "content": "q2"}]}, "not the assistant"),
    ("no_assistant", {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]},
     "no assistant message"),
    ("empty_content", {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]},
     "empty 'content'"),
    ("sharegpt_unknown_role", {"conversations": [{"from": "alien", "value": "q"}, {"from": "gpt", "value": "a"}]},
     "unknown role 'alien'"),
]
GOOD_MESSAGES = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


@pytest.mark.parametrize("name,records,line,problem", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_alpaca_files(write_jsonl, name, records, line, problem):
    ds = data.load(write_jsonl(f"{name}.jsonl", records))
    assert [(e.line, problem in e.problem) for e in ds.errors] == [(line, True)], ds.errors
    assert len(ds.examples) == 1  # the good record is still read
    with pytest.raises(InputFileError, match=f":{line}: "):
        ds.raise_for_errors()


@pytest.mark.parametrize("name,record,problem", BROKEN_MESSAGES, ids=[b[0] for b in BROKEN_MESSAGES])
def test_broken_conversations(write_jsonl, name, record, problem):
    ds = data.load(write_jsonl(f"{name}.jsonl", [GOOD_MESSAGES, GOOD_MESSAGES, record]))
    assert len(ds.errors) == 1 and ds.errors[0].line == 3 and problem in ds.errors[0].problem, ds.errors


def test_utf16_cp949_and_empty_files(tmp_path):
    """Decoded as the document loaders and uploads decode (llmlab.text.decode_text)."""
    for enc in ("utf-16", "cp949"):
        p = tmp_path / f"{enc}.jsonl"
        p.write_bytes((json.dumps(ALPACA, ensure_ascii=False) + "\n").encode(enc))
        ds = data.load(p)
        assert not ds.errors and ds.examples[0].messages[1].content == ALPACA["output"], enc
    binary = tmp_path / "nul.jsonl"
    binary.write_bytes(b'{"instruction": "x"}\x00\n')
    with pytest.raises(InputFileError, match="NUL"):
        data.load(binary)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert [e.problem for e in data.load(empty).errors] == ["the file holds no records"]
    with pytest.raises(InputFileError, match="file not found"):
        data.load(tmp_path / "missing.jsonl")


def test_unknown_format_and_undetectable_records(write_jsonl):
    with pytest.raises(RegistryError, match="valid names: alpaca, messages, text"):
        data.load(write_jsonl("a.jsonl", [ALPACA]), format="sharegpt")
    ds = data.load(write_jsonl("b.jsonl", [{"question": "q", "answer": "a"}]))
    assert "cannot tell the format" in ds.errors[0].problem


def test_forced_format_reports_missing_fields(write_jsonl):
    ds = data.load(write_jsonl("a.jsonl", [ALPACA]), format="messages")
    assert "missing field 'messages'" in ds.errors[0].problem
