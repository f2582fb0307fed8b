"""Qdrant Edge passes the store contract; a second process gets a clear "in use" error."""
from __future__ import annotations

import subprocess
import sys

import pytest

from llmlab.rag.stores import open_store
from llmlab.testing.store_contract import StoreContract

pytest.importorskip("qdrant_edge")


class TestEdgeStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        s = open_store("edge", "test", path=tmp_path / "edge")
        yield s
        s.close()

    @pytest.fixture
    def reopen(self, tmp_path):
        def _reopen(store):
            store.close()
            return open_store("edge", "test", path=tmp_path / "edge")
        return _reopen


def test_second_process_gets_a_clear_error(tmp_path):
    s = open_store("edge", "busy", path=tmp_path / "edge")
    s.ensure(4)
    code = ("import sys\nfrom llmlab.rag.stores import open_store\nfrom llmlab.errors import LLMLabError\n"
            f"try:\n    open_store('edge', 'busy', path={str(tmp_path / 'edge')!r})\n"
            "except LLMLabError as e:\n    print(e); sys.exit(3)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    s.close()
    assert r.returncode == 3, r.stderr
    assert "busy: another llmlab process" in r.stdout
