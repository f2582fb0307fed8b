"""``llmlab rag``: JSON shapes, exit codes, errors on stderr."""
from __future__ import annotations

import json

from click.testing import CliRunner

from llmlab.cli.main import cli


def run(*args):
    r = CliRunner().invoke(cli, ["rag", *args], catch_exceptions=False)
    return r


def test_ingest_search_list_remove(docs_dir):
    fast = ["--embedder", "hash", "--tokenizer", "simple", "--chunk-tokens", "48", "--overlap", "8"]
    r = run("ingest", str(docs_dir), "-c", "t", *fast, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) >= {"collection", "documents", "chunks", "skipped", "seconds"}
    assert out["documents"] == 5 and {s["path"].rsplit("/", 1)[-1] for s in out["skipped"]} == {"broken.pdf", "empty.txt"}

    r = run("search", "목성에는 대적점이", "-c", "t", "-k", "2", "--json")
    hits = json.loads(r.stdout)["hits"]
    assert len(hits) == 2 and hits[0]["doc_id"] == "rec-2" and "page" in hits[0] and "score" in hits[0]

    r = run("search", "목성에는 대적점이", "-c", "t")
    assert r.exit_code == 0 and "1. [" in r.stdout

    r = run("collections", "--json")
    assert json.loads(r.stdout)["collections"][0]["documents"] == 5
    r = run("list", "-c", "t", "--json")
    assert len(json.loads(r.stdout)["documents"]) == 5

    r = run("remove", "rec-0", "-c", "t", "--json")
    assert json.loads(r.stdout)["removed"] == ["rec-0"]
    r = run("remove", "-c", "t", "--all", "--json")
    assert json.loads(r.stdout)["dropped"] is True
    assert json.loads(run("collections", "--json").stdout)["collections"] == []


def test_human_ingest_names_skipped_files_on_stderr(docs_dir):
    r = run("ingest", str(docs_dir), "-c", "t", "--embedder", "hash", "--tokenizer", "simple")
    assert r.exit_code == 0
    assert "5 document(s) indexed" in r.stdout
    assert "skipped" in r.stderr and "broken.pdf" in r.stderr and "empty.txt" in r.stderr


def test_ask_and_eval_json(docs_dir, tmp_path):
    run("ingest", str(docs_dir), "-c", "t", "--embedder", "hash", "--tokenizer", "simple", "--json")
    r = run("ask", "목성에는 대적점이 있나?", "-c", "t", "--backend", "fake", "-m", "x", "--max-new-tokens", "8", "--json")
    assert r.exit_code == 0, r.output
    ans = json.loads(r.stdout)
    assert set(ans) >= {"answer", "citations", "retrieved", "usage"}
    assert ans["citations"][0]["doc_id"] == "rec-2"

    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"id": "1", "question": "고양이는 쥐를 잡는", "answers": ["쥐"], "context_id": "rec-0"},
                            ensure_ascii=False) + "\n", encoding="utf-8")
    r = run("eval", "-c", "t", "-q", str(q), "--json")
    out = json.loads(r.stdout)
    assert out["task"] == "rag" and out["n"] == 1
    assert set(out["metrics"]) == {"recall@1", "recall@5", "recall@10", "mrr@10", "answer_in_context",
                                   "answer_hit@1", "answer_hit@5", "answer_hit@10", "false_refusal"}
    misses = tmp_path / "misses.jsonl"
    r = run("eval", "-c", "t", "-q", str(q), "--misses", str(misses))
    assert r.exit_code == 0, r.output
    assert "answer-hit@k" in r.stdout and "false_refusal" in r.stdout and misses.is_file()


def test_errors_go_to_stderr_with_exit_1():
    r = run("search", "x", "-c", "missing")
    assert r.exit_code == 1 and "error: no collection 'missing'" in r.stderr and r.stdout == ""
    r = run("remove", "-c", "missing")
    assert r.exit_code == 1 and "error:" in r.stderr


def test_two_phase_ingest_embed_and_status(docs_dir):
    fast = ["--embedder", "hash", "--tokenizer", "simple", "--chunk-tokens", "48", "--overlap", "8"]
    r = run("ingest", str(docs_dir), "-c", "laws", *fast, "--lexical-only")
    assert r.exit_code == 0, r.output
    assert "dense vectors 0/" in r.stdout and "llmlab rag embed -c laws" in r.stdout
    r = run("search", "목성에는 대적점이", "-c", "laws", "--json")
    assert json.loads(r.stdout)["hits"][0]["doc_id"] == "rec-2"
    st = json.loads(run("status", "-c", "laws", "--json").stdout)
    assert st["dense"]["done"] == 0 and st["unfinished"] and st["embedder"] == "hash"
    cols = json.loads(run("collections", "--json").stdout)["collections"]
    assert cols[0]["dense_done"] == 0 and cols[0]["dense_total"] == st["chunks"]
    assert "rag status -c laws" in run("collections").stderr
    r = run("embed", "-c", "laws", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["embedded"] == st["chunks"]
    st = json.loads(run("status", "-c", "laws", "--json").stdout)
    assert st["dense"] == {"done": st["chunks"], "total": st["chunks"], "coverage": 1.0} and not st["unfinished"]
    human = run("status", "-c", "laws").stdout
    assert f"dense       {st['chunks']}/{st['chunks']} (100%)" in human and "unfinished  no" in human


def test_ingest_of_a_missing_path_exits_1_and_creates_nothing(tmp_path):
    r = run("ingest", str(tmp_path / "nope"), "-c", "x", "--embedder", "hash")
    assert r.exit_code == 1 and "every input was skipped" in r.stderr and "no such file or folder" in r.stderr
    assert json.loads(run("collections", "--json").stdout)["collections"] == []


def test_a_failing_dense_pass_leaves_a_searchable_collection_and_says_how_to_resume(docs_dir, monkeypatch):
    from llmlab.testing.fake_embedder import HashEmbedder

    real = HashEmbedder.embed_documents

    def broken(self, texts):
        if len(texts) > 1:
            raise RuntimeError("out of memory")
        return real(self, texts)

    monkeypatch.setattr(HashEmbedder, "embed_documents", broken)
    r = run("ingest", str(docs_dir), "-c", "t", "--embedder", "hash", "--tokenizer", "simple")
    assert r.exit_code == 1
    assert "RuntimeError: out of memory" in r.stderr and "resume the dense pass with: llmlab rag embed -c t" in r.stderr
    assert json.loads(run("search", "목성에는 대적점이", "-c", "t", "--json").stdout)["hits"][0]["doc_id"] == "rec-2"
    monkeypatch.setattr(HashEmbedder, "embed_documents", real)
    assert run("embed", "-c", "t").exit_code == 0
    assert not json.loads(run("status", "-c", "t", "--json").stdout)["unfinished"]
