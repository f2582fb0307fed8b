"""Templates: schema, strict rendering, errors naming the variable / file / line / field."""
import pytest

from llmlab.errors import InputFileError, RegistryError
from llmlab.prompts import PromptTemplate, TemplateError, inline_template, library, library_names, load_template
from llmlab.prompts.template import load_template_file

PATTERNS = {"zero_shot", "few_shot", "persona", "step_by_step", "json_output", "delimiters", "summarize", "translate",
            "extractive_qa", "classify"}


def tpl(**kw):
    data = {"name": "t", "template": "Hello {{ who }}", "variables": {"who": "whom to greet"}}
    data.update(kw)
    return PromptTemplate.from_dict(data)


def test_render_and_messages_with_few_shot_examples():
    t = tpl(system="Be {{ mood }}.", variables={"who": "", "mood": {"default": "kind"}},
            examples=[{"input": {"who": "민수"}, "output": "안녕, 민수"}])
    assert t.render({"who": "지영"}) == "Hello 지영"
    msgs = t.messages({"who": "지영"})
    assert [(m.role, m.content) for m in msgs] == [
        ("system", "Be kind."), ("user", "Hello 민수"), ("assistant", "안녕, 민수"), ("user", "Hello 지영")]


def test_missing_and_unknown_variables_are_named():
    t = tpl()
    with pytest.raises(TemplateError, match="missing variable.*who"):
        t.render({})
    with pytest.raises(TemplateError, match="unknown variable.*whom.*declared: who"):
        t.render({"who": "a", "whom": "b"})


def test_undeclared_variable_in_template_is_a_load_error(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("name: t\ntemplate: 'Hi {{ who }} and {{ other }}'\nvariables: [who]\n", encoding="utf-8")
    with pytest.raises(InputFileError) as e:
        load_template_file(p)
    assert "other" in str(e.value) and e.value.field == "template" and e.value.line == 2 and str(p) in str(e.value)


def test_yaml_syntax_error_names_the_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: t\ntemplate: [unclosed\nvariables: []\n", encoding="utf-8")
    with pytest.raises(InputFileError) as e:
        load_template_file(p)
    assert e.value.line is not None and "YAML" in str(e.value)


@pytest.mark.parametrize("extra, field, words", [
    ({"params": {"temprature": 0.5}}, "params", "temprature"),
    ({"params": {"top_p": 3}}, "params", "top_p"),
    ({"output": {"schema": {"type": "nonsense"}}}, "output.schema", "JSON schema"),
    ({"colour": "red"}, "colour", "Extra inputs"),
    ({"examples": [{"input": {"nobody": 1}, "output": "x"}]}, "examples.0.input", "nobody"),
])
def test_bad_fields_are_named(extra, field, words):
    with pytest.raises(InputFileError) as e:
        tpl(**extra)
    assert e.value.field == field and words in str(e.value)


def test_jinja_syntax_error():
    with pytest.raises(InputFileError, match="Jinja2 syntax error"):
        tpl(template="Hello {{ who ")


def test_output_schema_is_available_to_the_template():
    t = tpl(template="Answer as {{ output_schema }}: {{ who }}", output={"schema": {"type": "object"}})
    assert t.render({"who": "x"}) == 'Answer as {"type": "object"}: x'


def test_inline_template_infers_variables():
    t = inline_template("Translate {{ text }} to {{ lang }}", system="Be brief about {{ text }}")
    assert set(t.variables) == {"text", "lang"}
    with pytest.raises(TemplateError, match="lang"):
        t.render({"text": "x"})


def test_fingerprint_changes_with_the_prompt_not_the_docs():
    a, b = tpl(description="one"), tpl(description="two")
    assert a.fingerprint == b.fingerprint
    assert tpl(template="Hi {{ who }}").fingerprint != a.fingerprint


def test_library_has_every_pattern_documented_with_korean_and_english_samples():
    names = set(library_names())
    assert PATTERNS <= names
    for t in library():
        assert t.description.strip(), t.name
        assert {s.lang for s in t.samples} >= {"ko", "en"}, t.name
        for s in t.samples:  # every documented sample renders
            assert t.messages(s.vars)[-1].content.strip()
    assert load_template("json_output").schema["required"] == ["name", "age", "city"]


def test_unknown_library_name_lists_valid_names():
    with pytest.raises(RegistryError, match="few_shot"):
        load_template("no_such_pattern")


def test_generation_params_merge():
    t = load_template("translate")
    assert t.generation_params(temperature=0.7, top_p=None) == {"temperature": 0.7, "max_new_tokens": 96}
