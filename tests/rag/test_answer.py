"""Answering with citations (fake model): window fitting, not-found, JSON shape, ledger."""
from __future__ import annotations

import pytest

import llmlab
from llmlab.ledger import Ledger
from llmlab.config import load_settings
from llmlab.rag.answer import NOT_FOUND, answer_question, ask, build_messages, cited_numbers
from llmlab.rag.retrieve import Retriever



def test_duplicate_chunks_are_cited_once():
    from llmlab.rag.answer import distinct
    from llmlab.rag.types import Chunk, Hit

    hits = [Hit(str(i), 1.0, Chunk(doc_id=d, index=0, text=t, source=d))
            for i, (d, t) in enumerate([("a.pdf", "제60조 ① 15일을\n준다."), ("a.txt", "제60조 ① 15일을 준다."), ("b", "다른 글")])]
    assert [h.chunk.doc_id for h in distinct(hits)] == ["a.pdf", "b"]


def test_cited_numbers():
    assert cited_numbers("답은 15일이다 [1][3]. 또한 [2, 4] 참고. [x]") == [1, 2, 3, 4]


def test_answer_maps_citations_to_chunks(coll):
    m = llmlab.load_model("x", backend="fake", replies=["목성입니다 [1]."], context_length=4096)
    ans = answer_question("태양계에서 가장 큰 행성은?", coll, m, k=3)
    assert ans.found and ans.answer == "목성입니다 [1]."
    first = ans.citations[0]
    assert first.n == 1 and first.cited and first.doc_id == "rec-2" and "목성" in first.text
    assert all(not c.cited for c in ans.citations[1:])
    d = ans.to_dict()
    assert set(d) >= {"answer", "citations", "retrieved", "usage"}
    assert set(d["citations"][0]) >= {"n", "doc_id", "source", "page", "text"}
    assert d["usage"]["prompt_tokens"] > 0
    prompt = m.backend.prompts[-1]
    assert "[1] (기록 2)" in prompt and "Question: 태양계에서 가장 큰 행성은?" in prompt


def test_streams_deltas(coll):
    m = llmlab.load_model("x", backend="fake", replies=["목성 [1]"], context_length=4096)
    pieces = []
    ans = answer_question("가장 큰 행성은 목성인가?", coll, m, on_delta=pieces.append)
    assert "".join(pieces) == ans.answer and len(pieces) > 1


def test_not_in_the_documents_without_calling_the_model(coll):
    m = llmlab.load_model("x", backend="fake", replies=["should not be called"], context_length=4096)
    ans = answer_question("양자역학의 불확정성 원리를 설명하라", coll, m)
    assert not ans.found and ans.answer == NOT_FOUND and ans.citations == []
    assert m.backend.calls == 0


def test_context_fits_the_model_window(coll):
    m = llmlab.load_model("x", backend="fake", replies=["ok"], context_length=700)
    hits = Retriever(coll).search("고양이 강아지 목성 세종대왕", 5)
    msgs, used = build_messages("질문", hits, m, max_new_tokens=64)
    assert 1 <= len(used) < len(hits)
    assert m.count_chat_tokens(msgs) <= 700 - 64
    overhead = m.count_chat_tokens(build_messages("질문", [], m, max_new_tokens=0)[0])
    n_ctx = overhead + 16 + 16 + 60  # room for 60 tokens of context: less than one chunk
    tiny = llmlab.load_model("x", backend="fake", replies=["ok"], context_length=n_ctx)
    msgs, used = build_messages("질문", hits, tiny, max_new_tokens=16)
    assert len(used) == 1 and tiny.count_chat_tokens(msgs) <= n_ctx - 16  # the best chunk, truncated
    assert hits[0].chunk.text not in msgs[1].content


def test_answers_are_recorded_with_retrieved_ids(coll):
    m = llmlab.load_model("x", backend="fake", replies=["고양이 [1]"], context_length=4096)
    ans = answer_question("쥐를 잡는 동물은?", coll, m, k=2)
    runs = Ledger(load_settings().ledger_path).runs(kind="rag")
    assert len(runs) == 1
    meta = runs[0].meta
    assert meta["retrieved"] == [h.id for h in ans.retrieved] and meta["collection"] == "t"
    assert meta["generation_run_id"] == ans.run_id is not None


def test_ask_loads_the_model_by_name(coll, monkeypatch):
    coll.close()
    ans = ask("쥐를 잡는 동물은?", "t", model=llmlab.load_model("x", backend="fake", replies=["고양이 [1]"],
                                                           context_length=4096))
    assert ans.citations[0].doc_id == "rec-0"


def test_prompt_library_template(coll):
    from llmlab.errors import InvalidParameterError
    from llmlab.rag.answer import load_answer_template

    m = llmlab.load_model("x", backend="fake", replies=["목성"], context_length=4096)
    ans = answer_question("태양계에서 가장 큰 행성은?", coll, m, template=load_answer_template("extractive_qa"))
    assert ans.answer == "목성"
    assert "Copy the shortest span" in m.backend.prompts[-1]
    with pytest.raises(InvalidParameterError, match="must declare the variables context and question"):
        load_answer_template("summarize")
