"""Ingest: bad files named, incremental and idempotent, changes replace, remove deletes."""
from __future__ import annotations

import pytest

from llmlab.errors import ConfigError, InvalidParameterError
from llmlab.rag.types import RagError
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


# -- two phases ------------------------------------------------------------------------------------
def test_lexical_only_is_searchable_and_embed_finishes_it(docs_dir, fast_config):
    from llmlab.rag.ingest import embed

    r = ingest([docs_dir], "t", lexical_only=True, **fast_config)
    assert r.embedded == 0 and r.dense_done == 0 and r.dense_total == r.chunks > 0 and r.lexical_only
    with Collection.open("t") as coll:
        st = coll.status()
        assert st["dense"] == {"done": 0, "total": r.chunks, "coverage": 0.0}
        assert st["unfinished"] and "llmlab rag embed -c t" in st["hint"]
    [hit] = search("목성에는 대적점이", "t", k=1)  # lexical: no dense vectors yet
    assert hit.chunk.doc_id == "rec-2" and "dense" not in hit.scores
    e = embed("t")
    assert e.embedded == r.chunks and (e.dense_done, e.dense_total) == (r.chunks, r.chunks)
    [hit] = search("목성에는 대적점이", "t", k=1)
    assert hit.chunk.doc_id == "rec-2" and "dense" in hit.scores
    with Collection.open("t") as coll:
        st = coll.status()
        assert not st["unfinished"] and st["hint"] is None and st["embedder_version"].startswith("hash@")
    ingest([docs_dir], "clean", **fast_config)  # both phases in one go give the very same points
    assert snapshot("t")["points"] == snapshot("clean")["points"]


def test_no_text_is_embedded_twice(tmp_path, fast_config):
    import json

    from llmlab.testing.fake_embedder import HashEmbedder

    d = tmp_path / "dup"
    d.mkdir()
    same = "같은 문장이 여러 문서에 들어 있다. 복사된 공지문이다."
    recs = [{"id": f"r{i}", "title": "공지", "text": same} for i in range(3)]
    recs.append({"id": "other", "title": "공지", "text": "전혀 다른 내용의 문서이다."})
    (d / "r.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in recs), encoding="utf-8")
    emb = HashEmbedder()
    r = ingest([d], "t", embedder=emb, batch_chunks=1, **{k: v for k, v in fast_config.items() if k != "embedder"})
    assert (r.chunks, r.embedded, r.reused, emb.calls - 1) == (4, 2, 2, 2)  # -1: the fingerprint's probe text
    # a changed document re-uses the vectors of its unchanged chunk texts (by content hash)
    recs[3]["title"], recs[0]["text"] = "공지", same + " 덧붙인 문장."
    (d / "r.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in recs), encoding="utf-8")
    again = ingest([d], "t", embedder=HashEmbedder())
    assert (again.documents, again.unchanged, again.embedded) == (1, 3, 1)


def test_reembed_with_another_embedder_and_no_mixing(docs_dir, fast_config):
    from llmlab.rag.ingest import embed

    r = ingest([docs_dir], "t", **fast_config)
    with pytest.raises(RagError, match="never mixes embedders.*--reembed"):
        embed("t", embedder="hash:32")
    with pytest.raises(ConfigError, match="embedder is 'hash', not 'hash:32'"):
        ingest([docs_dir], "t", embedder="hash:32")
    e = embed("t", embedder="hash:32", reembed=True)
    assert e.embedded == r.chunks and e.dense_done == e.dense_total == r.chunks
    with Collection.open("t") as coll:
        assert (coll.config.embedder, coll.config.dim) == ("hash:32", 32)
        dims = {len(p.vectors["dense"]) for p in coll.store.scroll(with_vectors=True) if "dense" in p.vectors}
        assert dims == {32}
        assert coll.status()["embedder_version"].startswith("hash:32@")
    [hit] = search("목성에는 대적점이", "t", k=1)
    assert hit.chunk.doc_id == "rec-2" and "dense" in hit.scores
    e = embed("t", embedder="hash:32", reembed=True)  # same size: vectors cleared and recomputed in place
    assert e.embedded == r.chunks
    fresh = dict(fast_config, embedder="hash:32")
    ingest([docs_dir], "fresh", **fresh)
    assert snapshot("t")["points"] == snapshot("fresh")["points"]


# -- bad input -------------------------------------------------------------------------------------
def test_nothing_to_ingest_is_an_error_and_creates_no_collection(tmp_path, fast_config):
    with pytest.raises(RagError, match="every input was skipped.*no such file or folder"):
        ingest([tmp_path / "missing"], "t", **fast_config)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "x.pdf").write_bytes(b"%PDF-1.4 broken")
    with pytest.raises(RagError, match="empty.txt: empty file"):
        ingest([bad], "t", **fast_config)
    assert list_collections() == []


def test_symlink_loops_and_broken_links_are_skipped(docs_dir, fast_config):
    import os

    os.symlink("loop", docs_dir / "loop")
    os.symlink("nowhere.txt", docs_dir / "dangling.txt")
    os.symlink("guide.md", docs_dir / "alias.md")  # a good link is read: the same document as its target
    r = ingest([docs_dir], "t", **fast_config)
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in r.skipped}
    assert reasons["loop"] == "symbolic link loop" and "broken symbolic link" in reasons["dangling.txt"]
    assert r.documents == 5 and "duplicate document id" in reasons["guide.md"]


def test_disk_full_names_the_path_and_the_next_run_resumes(docs_dir, fast_config, monkeypatch):
    import errno

    from llmlab.rag.ingest import embed
    from llmlab.rag.stores.edge import EdgeStore

    ingest([docs_dir], "clean", batch_chunks=4, **fast_config)
    calls = [0]
    real = EdgeStore.set_dense

    def full(self, vectors):
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, vectors)

    monkeypatch.setattr(EdgeStore, "set_dense", full)
    with pytest.raises(RagError, match=r"disk full while writing collection 't' under .*/rag/t \(dense phase; No space"):
        ingest([docs_dir], "t", batch_chunks=4, **fast_config)
    with Collection.open("t") as coll:
        done, total = coll.manifest.coverage()
        assert 0 < done < total and coll.status()["unfinished"]
    monkeypatch.setattr(EdgeStore, "set_dense", real)
    e = embed("t")
    assert e.embedded == total - done
    assert snapshot("t")["points"] == snapshot("clean")["points"]


def test_disk_full_in_the_lexical_phase(docs_dir, fast_config, monkeypatch):
    import sqlite3

    from llmlab.rag.manifest import Manifest

    ingest([docs_dir], "clean", batch_chunks=4, **fast_config)
    real = Manifest.commit
    calls = [0]

    def full(self, *a, **k):
        calls[0] += 1
        if calls[0] == 2:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, *a, **k)

    monkeypatch.setattr(Manifest, "commit", full)
    with pytest.raises(RagError, match="disk full while writing collection 't'.*lexical phase.*run the same command"):
        ingest([docs_dir], "t", batch_chunks=4, **fast_config)
    monkeypatch.setattr(Manifest, "commit", real)
    with Collection.open("t") as coll:
        assert coll.status()["pending_documents"]
    again = ingest([docs_dir], "t", batch_chunks=4, **fast_config)
    assert again.recovered >= 1
    assert snapshot("t") == snapshot("clean")


def test_too_little_free_space_stops_before_writing(docs_dir, fast_config, monkeypatch):
    """Qdrant Edge memory-maps its files: on a full disk it would die of SIGBUS, so ingest checks first."""
    import llmlab.rag.ingest as ingest_mod

    real = ingest_mod.free_bytes
    monkeypatch.setattr(ingest_mod, "free_bytes", lambda path: 3 * 2**20)
    with pytest.raises(RagError, match=r"disk full while writing collection 't' under .*only 3 MiB free"):
        ingest([docs_dir], "t", **fast_config)
    with Collection.open("t") as coll:
        assert coll.manifest.totals() == (0, 0) and not coll.store.exists()  # stopped before writing
    monkeypatch.setattr(ingest_mod, "free_bytes", real)
    r = ingest([docs_dir], "t", **fast_config)
    assert r.documents == 5 and r.dense_done == r.dense_total
