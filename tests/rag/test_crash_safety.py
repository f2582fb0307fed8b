"""kill -9 at any point of an ingest, then the same command again, gives exactly a clean run's points.

A real subprocess ingests and is SIGKILLed at each step of the journal protocol (after
the pending mark, after deleting old points, halfway through an upsert, before the flush,
before and after the commit, during recovery, before optimizing) and at random moments.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from llmlab.rag.collection import Collection
from llmlab.rag.ingest import ingest
from llmlab.rag.retrieve import search

from .test_ingest import snapshot

CHILD = r'''
import json, os, signal, sys, time
from llmlab.rag import ingest as ingest_mod
from llmlab.rag.manifest import Manifest
from llmlab.rag.stores.edge import EdgeStore

target, when, nth, paths, config, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]), json.loads(sys.argv[5]), float(sys.argv[6])
owner, _, name = target.partition(".")
cls = {"Manifest": Manifest, "EdgeStore": EdgeStore}[owner]
orig = getattr(cls, name)
calls = [0]

def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)

def wrapped(*args, **kwargs):
    calls[0] += 1
    hit = calls[0] == nth
    if hit and when == "before":
        die()
    if hit and when == "middle":  # upsert half of the points, then die
        self, points = args[0], args[1]
        half = dict(list(points.items())[: len(points) // 2]) if isinstance(points, dict) else points[: len(points) // 2]
        orig(self, half)
        die()
    result = orig(*args, **kwargs)
    if hit and when == "after":
        die()
    if delay:
        time.sleep(delay)
    return result

setattr(cls, name, wrapped)
ingest_mod.ingest(paths, "t", batch_chunks=4, **config)
print("finished")
'''


def run_child(paths, config, target="EdgeStore.upsert", when="never", nth=0, delay=0.0, timeout=120):
    args = [sys.executable, "-c", CHILD, target, when, str(nth), json.dumps([str(p) for p in paths]),
            json.dumps(config), str(delay)]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())


@pytest.fixture
def clean(docs_dir, fast_config):
    ingest([docs_dir], "t", batch_chunks=4, **fast_config)
    snap = snapshot("t")
    from llmlab.rag.collection import drop_collection

    drop_collection("t")
    assert snap["points"] and all(state == "committed" for *_, state in snap["docs"])
    return snap


KILL_POINTS = [
    ("Manifest.begin", "after", 1),
    ("EdgeStore.delete_documents", "after", 2),
    ("EdgeStore.upsert", "middle", 2),
    ("EdgeStore.flush", "before", 2),
    ("Manifest.commit", "before", 1),
    ("Manifest.commit", "after", 2),
    ("EdgeStore.optimize", "before", 1),
]


@pytest.mark.parametrize("target,when,nth", KILL_POINTS, ids=[f"{t}-{w}-{n}" for t, w, n in KILL_POINTS])
def test_kill_at_each_protocol_step(docs_dir, fast_config, clean, target, when, nth):
    r = run_child([docs_dir], fast_config, target, when, nth)
    assert r.returncode == -signal.SIGKILL, (r.stdout, r.stderr)
    again = ingest([docs_dir], "t", batch_chunks=4, **fast_config)
    assert snapshot("t") == clean
    assert again.recovered <= 5


def test_killed_again_during_recovery(docs_dir, fast_config, clean):
    assert run_child([docs_dir], fast_config, "EdgeStore.upsert", "middle", 2).returncode == -signal.SIGKILL
    with Collection.open("t") as coll:  # the crash really left a half-written batch behind
        unfinished = [d.doc_id for d in coll.manifest.unfinished()]
        assert unfinished and any(coll.store.count(d) for d in unfinished)
    # the next run dies right after recovery deleted the half-written points, before forgetting them
    assert run_child([docs_dir], fast_config, "EdgeStore.delete_documents", "after", 1).returncode == -signal.SIGKILL
    ingest([docs_dir], "t", batch_chunks=4, **fast_config)
    assert snapshot("t") == clean


def test_kill_while_replacing_a_changed_file(docs_dir, fast_config):
    ingest([docs_dir], "t", batch_chunks=4, **fast_config)
    (docs_dir / "guide.md").write_text("# 안내서\n\n" + " ".join(f"새 문장 {i}번이다." for i in range(30)),
                                       encoding="utf-8")
    ingest([docs_dir], "t", batch_chunks=4)
    expected = snapshot("t")
    (docs_dir / "guide.md").write_text("# 안내서\n\n예전 내용이다.\n", encoding="utf-8")
    ingest([docs_dir], "t", batch_chunks=4)  # back to the old content
    (docs_dir / "guide.md").write_text("# 안내서\n\n" + " ".join(f"새 문장 {i}번이다." for i in range(30)),
                                       encoding="utf-8")
    assert run_child([docs_dir], {}, "EdgeStore.upsert", "middle", 1).returncode == -signal.SIGKILL
    ingest([docs_dir], "t", batch_chunks=4)
    assert snapshot("t")["points"] == expected["points"]


def test_kill_at_random_moments(docs_dir, fast_config, clean):
    rng = random.Random(7)
    for _ in range(3):
        args = [sys.executable, "-c", CHILD, "EdgeStore.upsert", "never", "0",
                json.dumps([str(docs_dir)]), json.dumps(fast_config), "0.15"]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
        time.sleep(rng.uniform(0.5, 4.0))
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
    ingest([docs_dir], "t", batch_chunks=4, **fast_config)
    assert snapshot("t") == clean


DENSE_KILL_POINTS = [
    ("Manifest.mark_dense", "after", 1),  # one dense batch committed
    ("EdgeStore.set_dense", "middle", 2),  # half of the next batch's vectors written, not journalled
    ("Manifest.mark_dense", "before", 2),  # the next batch's vectors flushed, not journalled
]


@pytest.mark.parametrize("target,when,nth", DENSE_KILL_POINTS, ids=[f"{t}-{w}-{n}" for t, w, n in DENSE_KILL_POINTS])
def test_kill_in_the_dense_phase_resumes_without_re_embedding(docs_dir, fast_config, clean, target, when, nth):
    r = run_child([docs_dir], fast_config, target, when, nth)
    assert r.returncode == -signal.SIGKILL, (r.stdout, r.stderr)
    with Collection.open("t") as coll:
        done, total = coll.manifest.coverage()
        assert 0 < done < total  # the lexical phase is committed, the dense one partly
        assert coll.status()["unfinished"]
    [hit] = search("목성에는 대적점이", "t", k=1)  # searchable meanwhile
    assert hit.chunk.doc_id == "rec-2"
    again = ingest([docs_dir], "t", batch_chunks=4, **fast_config)  # the same command
    assert (again.documents, again.embedded) == (0, total - done)  # only what was not committed is embedded
    assert snapshot("t") == clean


def test_rag_embed_continues_a_killed_dense_pass(docs_dir, fast_config, clean):
    from llmlab.rag.ingest import embed

    assert run_child([docs_dir], fast_config, "Manifest.mark_dense", "after", 1).returncode == -signal.SIGKILL
    with Collection.open("t") as coll:
        done, total = coll.manifest.coverage()
    report = embed("t", batch_chunks=4)
    assert report.embedded == total - done and report.dense_done == total
    assert snapshot("t") == clean
