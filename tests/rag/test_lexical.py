"""Korean BM25 terms (Kiwi) and BM25 sparse vectors."""
from __future__ import annotations

import pytest

from llmlab.rag.lexical import TOKENIZERS, BM25Params, KiwiTokenizer, SimpleTokenizer, document_vector, query_vector, term_index


@pytest.fixture(scope="module")
def kiwi():
    pytest.importorskip("kiwipiepy")
    return KiwiTokenizer()


def test_kiwi_keeps_content_morphemes_and_drops_particles(kiwi):
    terms = kiwi("근로자에게 15일의 유급휴가를 주어야 한다.")
    assert "근로자" in terms and "유급" in terms and "휴가" in terms and "15" in terms
    assert not {"에게", "를", "의", "다"} & set(terms)


def test_kiwi_makes_inflected_forms_match(kiwi):
    assert set(kiwi("서울에 갔다")) & set(kiwi("서울로 가는 길"))  # 서울, 가


def test_kiwi_drops_question_words_and_lowercases_latin(kiwi):
    terms = kiwi("BTS의 팬클럽 이름은 무엇인가?")
    assert "bts" in terms and "무엇" not in terms


def test_kiwi_batch_matches_single(kiwi):
    texts = ["한국어 형태소 분석", "두 번째 문장입니다"]
    assert kiwi.tokenize(texts) == [kiwi(t) for t in texts]


def test_kiwi_gets_the_lab_threads_as_workers_and_a_batch_keeps_its_order(kiwi, monkeypatch):
    """Kiwi analyses a list with the lab's thread count of workers (ingest passes a batch of
    documents' sentences in one call); the rows come back in the input's order."""
    from llmlab.text import kiwi as shared

    texts = [f"{i}번째 근로자에게 연차 유급휴가 {i}일을 주어야 한다." for i in range(60)] + ["", "BTS 팬클럽"]
    alone = [kiwi(t) for t in texts]
    monkeypatch.setenv("LLMLAB_THREADS", "2")
    monkeypatch.setattr(shared, "_KIWI", [])  # a fresh Kiwi for this test only
    batch = KiwiTokenizer().tokenize(texts)
    assert shared._KIWI[0].num_workers == 2
    assert batch == alone and batch[5][0] == "5"


def test_simple_tokenizer():
    assert SimpleTokenizer()("Hello, 세계! hello") == ["hello", "세계", "hello"]
    assert set(TOKENIZERS.names()) == {"kiwi", "simple"}


def test_document_vector_saturates_term_frequency():
    p = BM25Params(k1=1.2, b=0.75, avg_len=4)
    v = document_vector(["a", "a", "a", "b"], p)
    weights = dict(zip(v.indices, v.values))
    norm = 1.2 * (1 - 0.75 + 0.75 * 4 / 4)
    assert weights[term_index("a")] == pytest.approx(3 * 2.2 / (3 + norm))
    assert weights[term_index("b")] == pytest.approx(1 * 2.2 / (1 + norm))
    assert v.indices == sorted(v.indices)


def test_longer_documents_weigh_each_term_less():
    short = document_vector(["a", "b"], BM25Params(avg_len=10))
    long = document_vector(["a"] + ["x"] * 30, BM25Params(avg_len=10))
    assert dict(zip(short.indices, short.values))[term_index("a")] > dict(zip(long.indices, long.values))[term_index("a")]


def test_query_vector_counts_each_term_once():
    v = query_vector(["a", "b", "a"])
    assert sorted(v.values) == [1.0, 1.0] and len(v.indices) == 2


def test_term_index_is_stable():
    assert term_index("휴가") == 821478093  # CRC32: the same in every process and store
