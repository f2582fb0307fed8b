"""Ingest: bad files named, incremental and idempotent, changes replace, remove deletes."""
from __future__ import annotations

import pytest

from llmlab.errors import ConfigError, InvalidParameterError
from llmlab.rag.collection import Collection, drop_collection, list_collections
from llmlab.rag.ingest import ingest, remove
from llmlab.rag.retrieve import search


def snapshot(name: str) -> dict:
    """Everything a collection holds: points (ids, payloads, vectors) and the manifest."""
    with Collection.open(name) as coll:
        points = sorted((p.id, repr(sorted(p.payload.items())), repr(sorted(
            (k, [round(x, 5) for x in (v.values if hasattr(v, "values") else v)], getattr(v, "indices", None))
            for k, v in p.vectors.items()))) for p in coll.store.scroll(with_vectors=True))
        docs = [(d.doc_id, d.content_hash, d.n_chunks, d.state) for d in coll.manifest.documents(state=None)]
    return {"points": points, "docs": docs}


def test_folder_with_bad_files_ingests_the_good_ones(docs_dir, fast_config):
    r = ingest([docs_dir], "t", **fast_config)
    assert r.documents == 5 and r.chunks >= 5
    assert sorted(s.path.rsplit("/", 1)[-1] for s in r.skipped) == ["broken.pdf", "empty.txt"]
    d = r.to_dict()
    assert set(d) >= {"collection", "documents", "chunks", "skipped", "seconds"}
    [hit] = search("세종대왕 한글", "t", k=1)
    assert hit.chunk.source.endswith("korea.txt") and "세종대왕이 1443년에" in hit.chunk.text  # CP949 decoded


def test_reingest_is_a_no_op(docs_dir, fast_config):
    ingest([docs_dir], "t", **fast_config)
    before = snapshot("t")
    r = ingest([docs_dir], "t")
    assert (r.documents, r.chunks, r.unchanged) == (0, 0, 5)
    assert snapshot("t") == before


def test_changed_file_replaces_its_chunks(docs_dir, fast_config):
    ingest([docs_dir], "t", **fast_config)
    (docs_dir / "guide.md").write_text("# 안내서\n\n완전히 새로운 내용이다. 예전 문장은 없다.\n", encoding="utf-8")
    r = ingest([docs_dir], "t")
    assert (r.documents, r.unchanged) == (1, 4)
    texts = [h.chunk.text for h in search("안내서 내용", "t", k=50)]
    assert any("완전히 새로운" in t for t in texts) and not any("가상환경" in t for t in texts)
    # the same chunks as ingesting the changed folder into a fresh collection (BM25's average
    # length was fixed by the first ingest, so only the vectors' weights may differ)
    ingest([docs_dir], "fresh", **fast_config)
    assert [p[:2] for p in snapshot("t")["points"]] == [p[:2] for p in snapshot("fresh")["points"]]


def test_remove_by_file_id_and_folder(docs_dir, fast_config):
    ingest([docs_dir], "t", **fast_config)
    assert remove([str(docs_dir / "korea.txt")], "t") == [str((docs_dir / "korea.txt").resolve())]
    assert remove(["rec-1"], "t") == ["rec-1"]
    with Collection.open("t") as coll:
        assert {d.doc_id for d in coll.manifest.documents()} == {
            str((docs_dir / "guide.md").resolve()), "rec-0", "rec-2"}
        assert sum(1 for _ in coll.store.scroll()) == sum(1 for p in coll.store.scroll())
        assert coll.store.count("rec-1", kind=None) == 0
    removed = remove([str(docs_dir)], "t")
    assert len(removed) == 3
    with Collection.open("t") as coll:
        assert coll.store.count(kind=None) == 0


def test_remove_unknown_target_is_an_error(docs_dir, fast_config):
    ingest([docs_dir], "t", **fast_config)
    with pytest.raises(Exception, match="nothing in collection 't' matches"):
        remove(["no-such-doc"], "t")


def test_settings_are_fixed_at_creation(docs_dir, fast_config):
    ingest([docs_dir], "t", **fast_config)
    with pytest.raises(ConfigError, match="chunk_tokens is 48, not 99"):
        ingest([docs_dir], "t", chunk_tokens=99)
    with pytest.raises(InvalidParameterError, match="invalid collection name"):
        ingest([docs_dir], "../evil", **fast_config)


def test_list_and_drop_collections(docs_dir, fast_config):
    ingest([docs_dir], "one", **fast_config)
    [info] = list_collections()
    assert info["name"] == "one" and info["documents"] == 5 and info["embedder"] == "hash"
    drop_collection("one")
    assert list_collections() == []


def test_qdrant_store_gives_the_same_points(docs_dir, fast_config):
    pytest.importorskip("qdrant_client")
    ingest([docs_dir], "edge", **fast_config)
    ingest([docs_dir], "local", store="qdrant", **fast_config)
    assert snapshot("edge")["points"] == snapshot("local")["points"]
    assert [h.id for h in search("고양이 쥐", "edge", k=3)] == [h.id for h in search("고양이 쥐", "local", k=3)]
