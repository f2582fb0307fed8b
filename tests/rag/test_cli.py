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
    assert set(out["metrics"]) == {"recall@1", "recall@5", "recall@10", "mrr@10", "answer_in_context"}


def test_errors_go_to_stderr_with_exit_1():
    r = run("search", "x", "-c", "missing")
    assert r.exit_code == 1 and "error: no collection 'missing'" in r.stderr and r.stdout == ""
    r = run("remove", "-c", "missing")
    assert r.exit_code == 1 and "error:" in r.stderr
