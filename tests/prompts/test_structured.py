"""Parsing and validating structured output."""
from llmlab.prompts.structured import extract_json, parse_structured, validation_errors

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}


def test_extract_json_from_chatter_and_fences():
    assert extract_json('Sure! {"a": 1} hope that helps')[0] == {"a": 1}
    assert extract_json('```json\n{"a": [1, 2]}\n```')[0] == {"a": [1, 2]}
    assert extract_json('"positive"')[0] == "positive"
    value, problem = extract_json("no json here")
    assert value is None and "no JSON" in problem


def test_validation_errors_name_the_path():
    errs = validation_errors({"name": "민수", "age": "서른", "x": 1}, SCHEMA)
    assert any(e.startswith("at $.age:") for e in errs)
    assert any("Additional properties" in e for e in errs)
    assert validation_errors({"name": "민수", "age": 30}, SCHEMA) == []


def test_parse_structured_reports_failures():
    ok = parse_structured('{"name": "Anna", "age": 28}', SCHEMA, constrained=True)
    assert ok.valid and ok.data == {"name": "Anna", "age": 28} and ok.constrained
    bad = parse_structured('{"name": "Anna"', SCHEMA)
    assert not bad.valid and bad.data is None and bad.errors
    wrong = parse_structured('{"name": "Anna"}', SCHEMA)
    assert not wrong.valid and "'age' is a required property" in wrong.errors[0]
