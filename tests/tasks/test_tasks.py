"""Task presets with the scripted fake model."""
import pytest

from llmlab.errors import ContextOverflowError, InputFileError, InvalidParameterError
from llmlab.models.model import load_model
from llmlab.tasks import answer_question, classify, extract, summarize, translate
from llmlab.tasks.classify import match_label
from llmlab.tasks.extract import load_schema
from llmlab.tasks.qa import select_context


def fake(replies, **kw):
    return load_model("fake", backend="fake", ledger=False, replies=replies, **kw)


DOC = "\n\n".join(f"서울시는 {i}번째 계획을 발표했다. 시는 버스 {i}천 대에 와이파이를 단다." for i in range(12))


def test_short_documents_are_summarized_in_one_call():
    m = fake(["짧은 요약."], context_length=2048)
    r = summarize(m, "고양이가 매트 위에 앉았다.", max_new_tokens=16)
    assert r.text == "짧은 요약." and r.info["strategy"] == "single" and len(r.completions) == 1
    assert r.info["language"] == "Korean" and "Korean" in m.backend.prompts[0]


def test_long_documents_run_map_reduce_and_say_so():
    m = fake(["부분 요약."], context_length=512)
    r = summarize(m, DOC, style="bullet", max_new_tokens=16)
    d = r.to_dict()
    assert d["strategy"] == "map-reduce" and d["chunks"] > 1 and d["levels"] >= 1
    assert d["calls"] == len(m.backend.prompts) == d["chunks"] + 1  # map calls + one reduce
    assert all(len(p.encode()) < 512 for p in m.backend.prompts)  # every call fit the window
    assert "bullet" in m.backend.prompts[-1] and "bullet" not in m.backend.prompts[0]  # style only at the end


def test_summarize_rejects_a_context_too_small_and_bad_style():
    with pytest.raises(ContextOverflowError, match="context window"):
        summarize(fake(["x"], context_length=128), DOC, max_new_tokens=16)
    with pytest.raises(InvalidParameterError, match="bullet"):
        summarize(fake(["x"]), "text", style="poem")


def test_translate_detects_the_source_and_cleans_the_reply():
    m = fake(['English: "The cat sat."'])
    r = translate(m, "고양이가 앉았다.", to="en")
    assert r.text == "The cat sat." and r.info["source_lang"] == "Korean" and r.info["target_lang"] == "English"
    assert m.backend.prompts[0].count("Korean") >= 1
    r = translate(fake(["고양이"]), "The cat", to="ko")
    assert r.info["source_lang"] == "English" and r.info["target_lang"] == "Korean"


def test_one_line_sources_stop_at_the_end_of_the_line():
    r = translate(fake(["The cat.\nAnd then a story"]), "고양이.", to="en")
    assert r.text == "The cat." and r.completions[0].params.stop == ["\n"]


def test_qa_answers_from_context_or_says_it_is_not_there():
    ctx = "세종대왕은 1443년에 훈민정음을 창제하고 1446년에 반포하였다."
    r = answer_question(fake(["1446년"]), ctx, "반포 연도는?")
    assert r.data == {"answer": "1446년", "found": True}
    r = answer_question(fake(["Not in the context."]), ctx, "누가 설계했나?")
    assert r.data == {"answer": None, "found": False} and r.text == "not in the context"
    r = answer_question(fake(["문맥에 없습니다."]), ctx, "누가 설계했나?")
    assert not r.data["found"]


def test_qa_keeps_the_most_relevant_pieces_of_a_long_context():
    count = lambda s: len(s.encode())  # noqa: E731
    ctx = "\n\n".join(["고양이는 귀엽다."] * 10 + ["훈민정음은 1446년에 반포되었다."] + ["강아지는 충성스럽다."] * 10)
    text, kept, total = select_context(ctx, "훈민정음은 언제 반포되었나?", 120, count)
    assert "훈민정음" in text and count(text) <= 120 and kept < total


def test_classify_matches_labels_in_free_text():
    assert match_label("Positive.", ["positive", "negative"]) == "positive"
    assert match_label("I think it is negative, not positive", ["positive", "negative"]) == "negative"
    assert match_label('"sports"', ["economy", "sports"]) == "sports"
    assert match_label("긍정입니다", ["긍정", "부정"]) == "긍정"
    assert match_label("모르겠어요", ["긍정", "부정"]) is None
    r = classify(fake(["Label: sports"]), "The striker scored.", "economy, sports", max_new_tokens=20)
    assert r.data == {"label": "sports", "valid": True} and r.info["labels"] == ["economy", "sports"]
    with pytest.raises(InvalidParameterError, match="two labels"):
        classify(fake(["x"]), "t", "only")


SCHEMA = {"type": "object", "properties": {"date": {"type": "string"}, "room": {"type": "integer"}},
          "required": ["date", "room"]}


def test_extract_validates_and_reports():
    r = extract(fake(['{"date": "화요일", "room": 301}']), "화요일 301호 회의", SCHEMA)
    assert r.data == {"date": "화요일", "room": 301} and r.info["valid"] and r.info["errors"] == []
    r = extract(fake(['{"date": "화요일", "room": "301호"}']), "화요일 301호 회의", SCHEMA)
    assert not r.info["valid"] and "at $.room" in r.info["errors"][0]


def test_load_schema_errors(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('{"type": "object",\n "properties": }', encoding="utf-8")
    with pytest.raises(InputFileError) as e:
        load_schema(p)
    assert e.value.line == 2
    p.write_text('{"type": 12}', encoding="utf-8")
    with pytest.raises(InputFileError, match="schema"):
        load_schema(p)


def test_a_custom_template_must_declare_what_the_task_fills(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("name: mine\ntemplate: 'Shorten: {{ doc }}'\nvariables: [doc]\n", encoding="utf-8")
    with pytest.raises(InvalidParameterError, match="text"):
        summarize(fake(["x"]), "abc", template=str(p))
