"""Unencodable text is found wherever it hides, and files name the line that holds it."""
from __future__ import annotations

import json

import pytest

from llmlab.errors import InputFileError
from llmlab.textcheck import UnencodableTextError, check_text, first_unencodable, load_json_line

BAD = "x\ud800y"


def test_first_unencodable_walks_lists_dicts_and_keys():
    assert first_unencodable({"a": ["ok", {"b": BAD}]}) == ("a.1.b", 1)
    assert first_unencodable({BAD: 1}) == (BAD, 1)
    assert first_unencodable({"a": ["한국어", "\U0010ffff", "\x00", 3, None]}) is None


def test_check_text_raises_a_400_kind_of_error_naming_the_field():
    with pytest.raises(UnencodableTextError, match=r"messages\.0\.content: .*lone surrogate, at character 2") as e:
        check_text({"messages": [{"content": BAD}]})
    assert e.value.param == "messages.0.content"


def test_a_json_line_with_a_lone_surrogate_names_file_and_line(tmp_path):
    with pytest.raises(InputFileError, match=r"data\.jsonl:7: .*lone surrogate"):
        load_json_line(json.dumps({"text": BAD}), tmp_path / "data.jsonl", 7)


def test_every_jsonl_reader_reports_the_line(tmp_path):
    from llmlab.eval.data import read_jsonl
    from llmlab.finetune.data import read_jsonl as read_training
    from llmlab.rag.loaders.jsonl import load_jsonl
    from llmlab.rag.types import Skipped

    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"text": "좋은 줄", "label": "a"}) + "\n" + json.dumps({"text": BAD, "label": "b"}) + "\n")
    with pytest.raises(InputFileError, match=r"d\.jsonl:2: .*lone surrogate"):
        read_jsonl(p)
    training = list(read_training(p))
    assert training[1][0] == 2 and "lone surrogate" in str(training[1][1])
    docs = list(load_jsonl(p))
    assert isinstance(docs[1], Skipped) and docs[1].path.endswith("d.jsonl:2") and "lone surrogate" in docs[1].reason
