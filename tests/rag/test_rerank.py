"""The reranker seam: cross-encoder (stubbed) and LLM judge (fake model) re-order candidates."""
from __future__ import annotations

import math
import sys
import types

import pytest

import llmlab
from llmlab.errors import RegistryError
from llmlab.rag.collection import Collection
from llmlab.rag.ingest import ingest
from llmlab.rag.rerank import LLMReranker, load_reranker, rerank
from llmlab.rag.retrieve import Retriever
from llmlab.rag.types import Chunk, Hit


def hits(*texts):
    return [Hit(str(i), 1.0 - i / 10, Chunk(doc_id=f"d{i}", index=0, text=t, source="s")) for i, t in enumerate(texts)]


@pytest.fixture
def stub_cross(monkeypatch):
    class CrossEncoder:
        def __init__(self, name, device=None):
            pass

        def predict(self, pairs):
            return [float("목성" in text) for _, text in pairs]  # a "model" that loves Jupiter

    monkeypatch.setitem(sys.modules, "sentence_transformers", types.SimpleNamespace(CrossEncoder=CrossEncoder))


def test_cross_encoder_reorders_and_keeps_the_fused_score(stub_cross):
    r = load_reranker("cross:some/cross-encoder")
    assert r.name == "cross:some/cross-encoder"
    out = rerank(r, "가장 큰 행성", hits("고양이", "목성은 크다", "강아지"))
    assert out[0].chunk.text == "목성은 크다" and out[0].scores["fused"] == pytest.approx(0.9)


def test_unknown_reranker():
    with pytest.raises(RegistryError, match="valid names: cross, llm"):
        load_reranker("magic:x")


def test_llm_judge_scores_yes_logprob():
    yes = LLMReranker(llmlab.load_model("x", backend="fake", replies=["yes"], ledger=False))
    [s] = yes.scores("질문", ["본문"])
    assert s <= 0 and s > -math.inf
    no = LLMReranker(llmlab.load_model("x", backend="fake", replies=["no"], ledger=False))
    assert no.scores("질문", ["본문"])[0] < s


def test_retriever_applies_the_reranker(docs_dir, fast_config, stub_cross):
    ingest([docs_dir], "t", **fast_config)
    with Collection.open("t") as coll:
        plain = Retriever(coll).search("고양이는 쥐를 잡는", 3)
        reranked = Retriever(coll, reranker=load_reranker("cross:x")).search("고양이는 쥐를 잡는", 3)
    assert plain[0].chunk.doc_id == "rec-0"
    assert reranked[0].chunk.doc_id == "rec-2" and "fused" in reranked[0].scores
