"""The rerankers that run offline pass :class:`llmlab.testing.reranker_contract.RerankerContract`.

Only ``llm:MODEL`` runs without a download (``cross:`` needs a cross-encoder model), so the
contract runs it on the bundled chat model (slow).
"""
from __future__ import annotations

import pytest

from llmlab.models.model import load_model
from llmlab.rag.rerank import RERANKERS
from llmlab.testing.reranker_contract import RerankerContract


@pytest.fixture(scope="module")
def smol():
    m = load_model("smollm2-135m", threads=1, ledger=False)
    yield m
    m.close()


@pytest.mark.slow
class TestLLMRerankerOnTheBundledModel(RerankerContract):
    QUERY = "What is the capital of France?"
    RELEVANT = "Paris is the capital of France."
    DISTRACTORS = ["Bananas are a yellow fruit.", "The cat sat on the mat."]

    @pytest.fixture
    def reranker(self, smol):
        return RERANKERS.get("llm")(smol)
