"""The manifest journals a batch in one transaction: a process killed between its rows leaves none of them."""
from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from llmlab.rag.manifest import Manifest

CHILD = r'''
import os, signal, sys
from llmlab.rag.manifest import Manifest

path, step, docs = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = Manifest(path)
batch = [(f"d{i}", f"/src/d{i}.txt", "", f"h{i}") for i in range(docs)]
if step == "commit":
    m.begin(batch)
rows = [0]

def trace(sql):
    # executemany steps its statement once per row: die on the third row of the batch
    if ("INSERT INTO documents" in sql and step == "begin") or ("SET state='committed'" in sql and step == "commit"):
        rows[0] += 1
        if rows[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)

m._db.set_trace_callback(trace)
if step == "begin":
    m.begin(batch)
else:
    m.commit({d: 2 for d, *_ in batch}, [(d, i, f"t{d}{i}", False) for d, *_ in batch for i in range(2)])
print("finished")
'''


@pytest.mark.parametrize("step", ["begin", "commit"])
def test_a_batch_is_all_or_nothing(tmp_path, step):
    path = tmp_path / "manifest.db"
    r = subprocess.run([sys.executable, "-c", CHILD, str(path), step, "6"], capture_output=True, text=True, timeout=60)
    assert r.returncode == -signal.SIGKILL, (r.stdout, r.stderr)
    m = Manifest(path)
    try:
        states = {d.doc_id: d.state for d in m.documents(state=None)}
        if step == "begin":
            assert states == {}  # not the first two rows alone
        else:
            assert states == {f"d{i}": "pending" for i in range(6)}  # none committed, every one still pending
            assert m.coverage() == (0, 0) and m.dense_todo(10) == []
    finally:
        m.close()


def test_dense_bookkeeping(tmp_path):
    m = Manifest(tmp_path / "manifest.db")
    m.begin([("a", "/a", "", "ha"), ("b", "/b", "", "hb")])
    m.commit({"a": 2, "b": 1}, [("a", 0, "x", False), ("a", 1, "y", True), ("b", 0, "x", False)])
    assert m.coverage() == (1, 3)
    assert m.dense_todo(10) == [("a", "ha", 0, "x"), ("b", "hb", 0, "x")]
    assert m.dense_sources(["x", "y"]) == {"y": ("a", "ha", 1)}
    m.mark_dense([("a", 0)])
    assert m.dense_sources(["x"]) == {"x": ("a", "ha", 0)} and m.coverage() == (2, 3)
    m.reset_dense({"embedder": "hash:32"})
    assert m.coverage() == (0, 3) and m.meta()["embedder"] == "hash:32"
    m.forget(["a"])
    assert m.coverage() == (0, 1)
    m.close()


def test_old_manifests_count_their_chunks_as_embedded(tmp_path):
    import sqlite3

    path = tmp_path / "manifest.db"
    db = sqlite3.connect(path)  # the layout before the two-phase ingest
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE documents (doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT NOT NULL DEFAULT '',
            content_hash TEXT NOT NULL, n_chunks INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, updated_at TEXT NOT NULL);
        INSERT INTO documents VALUES ('a', '/a', '', 'h', 3, 'committed', 'now');
    """)
    db.commit()
    db.close()
    m = Manifest(path)
    assert m.coverage() == (3, 3)
    m.close()
