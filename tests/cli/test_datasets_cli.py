"""``llmlab datasets list|info|pull|path|rm``: a table, one JSON object with --json, errors on stderr + exit 1."""
from __future__ import annotations

import json

from click.testing import CliRunner

from llmlab.cli.main import cli
from llmlab.datasets.catalog import load_catalog


def run(*args: str):
    return CliRunner().invoke(cli, ["datasets", *args])


def test_list_json_shows_every_catalog_entry_with_licence_source_and_size(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
    r = run("list", "--json")
    assert r.exit_code == 0, r.stderr
    rows = {d["name"]: d for d in json.loads(r.stdout)["datasets"]}
    assert set(rows) == {e.name for e in load_catalog()}
    for e in load_catalog():
        d = rows[e.name]
        assert d["bundled"] is e.bundled and d["kind"] == e.kind and d["licence"] == e.licence and d["source"]
        if not e.bundled:
            assert d["size"] == e.download_size and d["available"] is False


def test_info_shows_the_licence_before_anything_is_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
    r = run("info", "korquad-v1")
    assert r.exit_code == 0, r.stderr
    assert "CC-BY-ND-4.0" in r.stdout and "--accept-licence" in r.stdout and "not pulled yet" in r.stdout


def test_pull_refuses_a_no_derivatives_set_without_accept_licence(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # never reached: refused before any request
    r = run("pull", "korquad-v1")
    assert r.exit_code == 1 and "--accept-licence" in r.stderr and "CC-BY-ND-4.0" in r.stderr


def test_unknown_names_and_unpulled_sets_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
    r = run("pull", "nope")
    assert r.exit_code == 1 and "known datasets:" in r.stderr and "naver-news-summ" in r.stderr
    r = run("path", "naver-news-summ")
    assert r.exit_code == 1 and "llmlab datasets pull naver-news-summ" in r.stderr
    r = run("rm", "naver-news-summ")
    assert r.exit_code == 1 and "nothing to remove" in r.stderr
