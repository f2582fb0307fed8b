"""``datasets pull`` / ``rm`` against the local Hub of tests/models/fakehub.py (dataset repos),
through the same download machinery as ``models pull``: conversion into the lab's formats,
resume after a dropped connection, the catalog's sha256 pin, the Hub's checksum, licence
acceptance, gated sets and unknown names. The catalogs here are built by each test with the
checksums it computes from the bytes it serves."""
from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest

from llmlab.datasets import catalog as catalog_mod
from llmlab.datasets import describe, path, pull, remove
from llmlab.datasets.pulling import LicenceNotAcceptedError
from llmlab.errors import DatasetNotFoundError
from llmlab.eval.data import FORMATS, read_jsonl
from llmlab.hub import ChecksumMismatchError, GatedModelError, NetworkError
from llmlab.rag.evaluate import load_questions

from ..models.fakehub import FakeFile, FakeHub

MB = 1024 * 1024
COMMIT = "b" * 40


@pytest.fixture
def hub(tmp_path, monkeypatch):
    from huggingface_hub import constants

    server = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # conftest switched it on at import
    yield server
    server.stop()


def use_catalog(monkeypatch, hub_entries: list[dict]) -> None:
    entries = tuple(catalog_mod.parse_catalog({"hub": hub_entries}))
    monkeypatch.setattr(catalog_mod, "load_catalog", lambda: entries)


def entry(name: str, repo: str, files: list[dict], fmt: str, kind: str, licence: str = "CC-BY-4.0", **kw) -> dict:
    return {"name": name, "kind": kind, "repo": repo, "revision": COMMIT, "files": files, "convert": {"format": fmt},
            "licence": licence, "licence_url": "https://example.org/licence", "source": "test", **kw}


def news_csv(n: int, pad: int = 0) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["date", "title", "document", "summary"])
    w.writeheader()
    for i in range(n):
        w.writerow({"date": "2022-07-01", "title": f"제목 {i}", "document": f"본문 {i}. " + "가" * pad,
                    "summary": f"요약 {i}"})
    return buf.getvalue().encode("utf-8")


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_pull_converts_a_summarization_csv_that_eval_reads(hub, monkeypatch):
    data = news_csv(5)
    hub.add("org/news", {"test.csv": data}, commit=COMMIT, repo_type="dataset")
    use_catalog(monkeypatch, [entry("news", "org/news", [{"file": "test.csv", "role": "rows", "sha256": sha256(data)}],
                                    "summarize", "summarize")])
    assert describe("news").available is False
    with pytest.raises(DatasetNotFoundError, match="llmlab datasets pull news"):
        path("news")
    r = pull("news", progress=False)
    assert r.commit == COMMIT and r.downloaded_bytes == len(data)
    recs = read_jsonl(r.files["dev"], FORMATS["summarize"])
    expected = list(csv.DictReader(io.StringIO(data.decode())))
    assert [(x["document"], x["summary"], x["title"]) for x in recs] == \
        [(e["document"], e["summary"], e["title"]) for e in expected]
    assert str(path("news")) == r.path
    info = describe("news")
    assert info.available and info.size and json.loads((path("news") / "dataset.json").read_text())["commit"] == COMMIT
    # a second pull downloads nothing
    again = pull("news", progress=False)
    assert again.downloaded_bytes == 0 and len(hub.gets("test.csv")) == 1


def test_squad_rows_become_a_rag_corpus_and_questions(hub, monkeypatch):
    rows = [{"id": "q1", "title": "서울", "context": "서울은 대한민국의 수도이다.", "question": "대한민국의 수도는?",
             "answers": {"text": ["서울"], "answer_start": [0]}},
            {"id": "q2", "title": "서울", "context": "서울은 대한민국의 수도이다.", "question": "서울은 어느 나라의 수도?",
             "answers": {"text": ["대한민국"], "answer_start": [4]}},
            {"id": "q3", "title": "부산", "context": "부산은 항구 도시이다.", "question": "항구 도시는?",
             "answers": [{"text": "부산", "answer_start": 0}]}]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    hub.add("org/squad", {"dev.jsonl": data}, commit=COMMIT, repo_type="dataset")
    use_catalog(monkeypatch, [entry("sq", "org/squad", [{"file": "dev.jsonl", "role": "rows"}], "squad", "rag")])
    r = pull("sq", progress=False)
    corpus = read_jsonl(r.files["corpus"], FORMATS["contexts"])
    assert sorted(c["text"] for c in corpus) == sorted({r_["context"] for r_ in rows})  # unique contexts
    qs = load_questions(r.files["questions"])
    by_id = {c["id"]: c["text"] for c in corpus}
    for q, src in zip(qs, rows):
        assert by_id[q.context_id] == src["context"]
        assert q.answers and all(a in src["context"] for a in q.answers)


def test_parallel_lines_become_translation_pairs(hub, monkeypatch):
    ko = "안녕하세요.\n\n고맙습니다.\n".encode()
    en = "Hello.\n\nThank you.\n".encode()
    hub.add("org/mt", {"dev.ko.txt": ko, "dev.en.txt": en}, commit=COMMIT, repo_type="dataset")
    use_catalog(monkeypatch, [entry("mt", "org/mt", [{"file": "dev.ko.txt", "role": "ko"},
                                                     {"file": "dev.en.txt", "role": "en"}], "parallel_lines", "translate")])
    r = pull("mt", progress=False)
    recs = read_jsonl(r.files["dev"], FORMATS["translate"])
    assert [(x["ko"], x["en"]) for x in recs] == [("안녕하세요.", "Hello."), ("고맙습니다.", "Thank you.")]


def test_a_dropped_download_resumes_on_the_next_call(hub, monkeypatch, tmp_path):
    data = news_csv(200, pad=40_000)  # ~24 MB: huggingface_hub writes 10 MiB chunks, so a partial file remains
    assert len(data) > 20 * MB
    hub.add("org/big", {"test.csv": FakeFile(data, drop_after=12 * MB, drops=1, fail_after_drop=1)}, commit=COMMIT, repo_type="dataset")
    use_catalog(monkeypatch, [entry("big", "org/big", [{"file": "test.csv", "role": "rows", "sha256": sha256(data)}],
                                    "summarize", "summarize")])
    with pytest.raises(NetworkError, match="run the same command again to resume"):
        pull("big", progress=False)
    partial = list((tmp_path / "hf-cache").rglob("*.incomplete"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < len(data)
    assert describe("big").available is False
    kept = partial[0].stat().st_size
    r = pull("big", progress=False)
    assert r.downloaded_bytes == len(data) - kept
    assert hub.gets("test.csv")[-1]["range"] == f"bytes={kept}-"
    assert len(read_jsonl(r.files["dev"], FORMATS["summarize"])) == 200


def test_a_file_that_is_not_the_pinned_one_fails_and_is_not_used(hub, monkeypatch, tmp_path):
    data = news_csv(3)
    hub.add("org/news", {"test.csv": data}, commit=COMMIT, repo_type="dataset")
    use_catalog(monkeypatch, [entry("news", "org/news", [{"file": "test.csv", "role": "rows", "sha256": "0" * 64}],
                                    "summarize", "summarize")])
    with pytest.raises(ChecksumMismatchError, match="checksum mismatch for test.csv"):
        pull("news", progress=False)
    assert describe("news").available is False
    assert not [p for p in (tmp_path / "hf-cache").rglob("*") if p.is_file() and "blobs" in p.parts]


def test_a_corrupted_download_fails_with_a_clear_message(hub, monkeypatch, tmp_path):
    data = news_csv(50)  # > 1 KB: served as an LFS file whose sha256 the Hub advertises
    hub.add("org/news", {"test.csv": FakeFile(data, corrupt=True)}, commit=COMMIT, repo_type="dataset")
    use_catalog(monkeypatch, [entry("news", "org/news", [{"file": "test.csv", "role": "rows"}], "summarize", "summarize")])
    with pytest.raises(ChecksumMismatchError, match="The bad file was removed"):
        pull("news", progress=False)
    assert describe("news").available is False


@pytest.mark.parametrize("licence,gated", [("CC-BY-NC-4.0", False), ("CC-BY-ND-4.0", False), ("CC-BY-4.0", True)])
def test_restricted_sets_need_accept_licence(hub, monkeypatch, licence, gated):
    data = news_csv(2)
    hub.add("org/news", {"test.csv": data}, commit=COMMIT, repo_type="dataset", gated=gated, token="hf_ok")
    use_catalog(monkeypatch, [entry("news", "org/news", [{"file": "test.csv", "role": "rows"}], "summarize",
                                    "summarize", licence=licence, gated=gated)])
    with pytest.raises(LicenceNotAcceptedError, match="--accept-licence"):
        pull("news", progress=False)
    assert hub.requests == []  # refused before anything was asked of the Hub
    if gated:
        with pytest.raises(GatedModelError, match="HF_TOKEN"):
            pull("news", accept_licence=True, progress=False)
        monkeypatch.setenv("HF_TOKEN", "hf_ok")
    assert pull("news", accept_licence=True, progress=False).path


def test_unknown_names_list_the_known_ones(hub, monkeypatch):
    use_catalog(monkeypatch, [entry("news", "org/news", [{"file": "test.csv", "role": "rows"}], "summarize", "summarize")])
    with pytest.raises(DatasetNotFoundError, match="known datasets: news"):
        pull("nope")


def test_rm_removes_the_converted_set_and_its_downloads(hub, monkeypatch, tmp_path):
    data = news_csv(4)
    hub.add("org/news", {"test.csv": data}, commit=COMMIT, repo_type="dataset")
    use_catalog(monkeypatch, [entry("news", "org/news", [{"file": "test.csv", "role": "rows"}], "summarize", "summarize")])
    pull("news", progress=False)
    r = remove("news")
    assert r.freed_bytes >= len(data)
    assert describe("news").available is False
    assert not (tmp_path / "hf-cache" / "datasets--org--news").exists()
    with pytest.raises(DatasetNotFoundError, match="nothing to remove"):
        remove("news")
