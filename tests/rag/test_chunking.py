from llmlab.rag.chunking import ChunkingConfig, chunk_document, pack, split_sentences
from llmlab.rag.types import Document

import pytest

from llmlab.errors import InvalidParameterError


def sentences(text):
    return [text[a:b] for a, b in split_sentences(text)]


def test_korean_sentences_end_after_words_not_numbers():
    text = "사용자는 15일의 유급휴가를 주어야 한다. <개정 2012. 2. 1.> 정말인가? 3.14는 원주율이다. Done."
    assert sentences(text) == ["사용자는 15일의 유급휴가를 주어야 한다.", "<개정 2012. 2. 1.> 정말인가?", "3.14는 원주율이다.",
                               "Done."]


def test_quotes_followed_by_quotative_particles_stay_together():
    assert sentences('그는 "좋다." 라고 말했다. 끝.') == ['그는 "좋다." 라고 말했다.', "끝."]


def test_line_breaks_split_only_before_items_and_headings():
    text = "첫 줄이 길게 이어지다가\n다음 줄로 넘어간다.\n① 첫째 항목\n② 둘째 항목\n1. 목록\n제2조(정의) 본문"
    assert sentences(text) == ["첫 줄이 길게 이어지다가\n다음 줄로 넘어간다.", "① 첫째 항목", "② 둘째 항목", "1. 목록",
                               "제2조(정의) 본문"]


def test_pack_respects_budget_and_overlap():
    counts = [10] * 10
    ranges = pack(counts, budget=30, overlap=10)
    assert ranges[0] == (0, 3)
    assert all(sum(counts[i:j]) <= 30 for i, j in ranges)
    assert all(b[0] == a[1] - 1 for a, b in zip(ranges, ranges[1:]))  # one sentence of overlap
    assert ranges[-1][1] == 10


def test_pack_gives_an_oversized_item_its_own_range():
    assert pack([5, 50, 5], budget=20, overlap=0) == [(0, 1), (1, 2), (2, 3)]


def test_chunks_keep_offsets_pages_and_sections():
    text = "제1장 총칙\n제1조(목적) 이 법은 목적을 정한다. 둘째 문장이다.\n제2조(정의) 이 법에서 쓰는 말의 뜻은 다음과 같다."
    doc = Document(id="d", source="d.txt", text=text, title="법",
                   pages=[(0, 1), (text.index("제2조"), 2)],
                   sections=[(0, "제1장 총칙"), (text.index("제1조"), "제1장 총칙 > 제1조(목적)"),
                             (text.index("제2조"), "제1장 총칙 > 제2조(정의)")])
    chunks = chunk_document(doc, lambda s: len(s), ChunkingConfig(200, 0))
    assert [c.section for c in chunks] == ["제1장 총칙 > 제1조(목적)", "제1장 총칙 > 제2조(정의)"]
    assert [c.page for c in chunks] == [1, 2]
    for c in chunks:
        assert text[c.char_start:c.char_end] == c.text
    assert chunks[0].text.startswith("제1장 총칙")  # the heading-only chapter joins the next section


def test_chunks_overlap_and_cover_the_text():
    text = " ".join(f"문장 번호 {i}번이다." for i in range(40))
    doc = Document(id="d", source="d", text=text)
    chunks = chunk_document(doc, lambda s: len(s) // 2, ChunkingConfig(40, 8))
    assert len(chunks) > 3
    assert all(len(c.text) // 2 <= 40 + 8 for c in chunks)
    assert chunks[0].char_start == 0 and chunks[-1].char_end == len(text)
    assert all(b.char_start < a.char_end for a, b in zip(chunks, chunks[1:]))  # overlapping
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_a_sentence_longer_than_the_budget_is_cut_at_spaces():
    text = " ".join(["단어"] * 200)
    chunks = chunk_document(Document(id="d", source="d", text=text), lambda s: len(s.split()), ChunkingConfig(50, 0))
    assert len(chunks) >= 4
    assert all(len(c.text.split()) <= 60 for c in chunks)
    assert all(not c.text.startswith(" ") for c in chunks)


def test_config_is_validated():
    with pytest.raises(InvalidParameterError):
        ChunkingConfig(8, 0)
    with pytest.raises(InvalidParameterError):
        ChunkingConfig(100, 60)
