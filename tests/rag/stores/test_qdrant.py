"""The qdrant-client store passes the same contract, in qdrant-client's local mode."""
from __future__ import annotations

import pytest

from llmlab.rag.stores import open_store
from llmlab.testing.store_contract import StoreContract

pytest.importorskip("qdrant_client")


class TestQdrantLocalStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        s = open_store("qdrant", "test", path=tmp_path / "qdrant")
        yield s
        s.close()

    @pytest.fixture
    def reopen(self, tmp_path):
        def _reopen(store):
            store.close()
            return open_store("qdrant", "test", path=tmp_path / "qdrant")
        return _reopen


class TestQdrantMemoryStore(StoreContract):
    @pytest.fixture
    def store(self, request):
        s = open_store("qdrant", f"mem-{request.node.name}", url=":memory:")
        yield s
        s.drop()

    @pytest.fixture
    def reopen(self, request):
        def _reopen(store):
            return open_store("qdrant", f"mem-{request.node.name}", url=":memory:")
        return _reopen
