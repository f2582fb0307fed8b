"""The /lab endpoints on the fake backend: RAG with citations, tasks, grids, jobs, ledger."""
from __future__ import annotations

import json
import threading
import time

from llmlab.jobs import TERMINAL

from .conftest import parse_sse

DOC = """# 서울 안내

서울은 대한민국의 수도이며 인구는 약 940만 명이다. 한강이 도시를 가로지른다.

# 부산 안내

부산은 대한민국 제2의 도시이며 해운대 해수욕장으로 유명하다.
"""


def wait_job(c, job_id, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/lab/jobs/{job_id}").json()
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def ingest(c, collection="docs"):
    r = c.post("/lab/rag/upload", data={"collection": collection, "tokenizer": "simple"},
               files=[("files", ("cities.md", DOC.encode(), "text/markdown"))])
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def test_rag_upload_search_and_ask_with_citations(client_for):
    c = client_for(replies=["서울은 대한민국의 수도입니다 [1]."], fake={"context_length": 4096})
    job = ingest(c)
    assert job["result"]["documents"] == 1 and job["result"]["chunks"] >= 1
    assert job["progress"]["fraction"] == 1.0
    cols = c.get("/lab/rag/collections").json()["collections"]
    assert [x["name"] for x in cols] == ["docs"] and "path" not in cols[0]
    info = c.get("/lab/rag/collections/docs", params={"chunks": 5}).json()
    assert info["documents"] == 1 and info["chunks_list"] and "path" not in info
    hits = c.post("/lab/rag/search", json={"query": "한강이 도시를 가로지른다", "collection": "docs"}).json()["hits"]
    assert hits and "서울" in hits[0]["text"]
    ans = c.post("/lab/rag/ask", json={"question": "서울은 대한민국의 수도이며 한강이 가로지른다?", "collection": "docs",
                                       "model": "m"}).json()
    assert ans["answer"] == "서울은 대한민국의 수도입니다 [1]." and ans["found"]
    cited = [x for x in ans["citations"] if x["cited"]]
    assert cited and cited[0]["n"] == 1 and cited[0]["source"].endswith("cities.md")
    with c.stream("POST", "/lab/rag/ask", json={"question": "서울은 대한민국의 수도이며 한강이 가로지른다?", "collection": "docs",
                                                "model": "m", "stream": True}) as s:
        events = parse_sse(s.read())
    assert events[-1] == "[DONE]"
    payloads = [json.loads(e) for e in events[:-1]]
    assert "".join(p.get("delta", "") for p in payloads) == "서울은 대한민국의 수도입니다 [1]."
    assert payloads[-1]["answer"]["citations"][0]["n"] == 1
    assert c.post("/lab/rag/search", json={"query": "x", "collection": "nope"}).status_code == 404
    assert c.post("/lab/rag/search", json={"query": "x", "collection": "../etc"}).status_code == 400
    assert c.delete("/lab/rag/collections/docs").status_code == 200
    assert c.get("/lab/rag/collections").json()["collections"] == []


def test_ingest_by_upload_ids_and_embedder_allow_list(client_for):
    c = client_for()
    up = c.post("/lab/uploads", files=[("files", ("a.txt", "하나 둘 셋".encode(), "text/plain"))]).json()["uploads"][0]
    r = c.post("/lab/rag/ingest", json={"upload_ids": [up["id"]], "collection": "c2", "tokenizer": "simple"})
    assert r.status_code == 202 and wait_job(c, r.json()["id"])["status"] == "succeeded"
    bad = c.post("/lab/rag/ingest", json={"upload_ids": [up["id"]], "collection": "c3", "embedder": "openai:x"})
    assert bad.status_code == 400
    assert c.post("/lab/rag/ingest", json={"upload_ids": ["0123456789ab"]}).status_code == 404


def test_tasks_through_the_pool(client_for):
    c = client_for(replies=["A short summary."])
    s = c.post("/lab/tasks/summarize", json={"model": "m", "text": "Long text. " * 20,
                                             "params": {"max_new_tokens": 40}}).json()
    assert s["task"] == "summarize" and s["text"] == "A short summary." and s["usage"]["total_tokens"] > 0
    t = c.post("/lab/tasks/translate", json={"model": "m", "text": "안녕하세요", "to": "en"}).json()
    assert t["task"] == "translate" and t["text"]
    q = c.post("/lab/tasks/qa", json={"model": "m", "context": "서울은 수도다.", "question": "수도는?"}).json()
    assert q["task"] == "qa"
    assert c.post("/lab/tasks/qa", json={"model": "m", "context": "x", "question": "y",
                                         "params": {"max_new_tokens": 10**6}}).status_code == 400
    assert c.post("/lab/tasks/qa", json={"model": "m", "context": "x", "question": "y",
                                         "params": {"typo": 1}}).status_code == 422


def test_prompt_grid_job_and_ledger(client_for):
    c = client_for(replies=["positive"])
    grid = {"name": "g", "templates": ["zero_shot"], "models": ["m"],
            "params": {"temperature": [0.0, 0.5], "max_new_tokens": 8},
            "inputs": [{"task": "Classify", "text": "좋아요"}, {"task": "Classify", "text": "싫어요"}]}
    assert "zero_shot" in [t["name"] for t in c.get("/lab/prompts/library").json()["templates"]]
    r = c.post("/lab/prompts/grid", json={"grid": grid})
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["n_cells"] == 4 and job["progress"]["done"] == 4
    assert c.app.state.lab.pool.loaded()[0]["in_use"] == 0  # the grid gave its model back
    logs = c.get("/lab/logs", params={"kind": "grid"}).json()["runs"]
    assert len(logs) == 4
    usage = c.get("/lab/usage").json()
    assert usage["totals"]["calls"] >= 4 and usage["usage"][0]["model"] == "m"
    assert c.post("/lab/prompts/grid", json={"grid": {**grid, "templates": ["/etc/passwd"]}}).status_code == 400
    assert c.post("/lab/logs/purge", json={}).json()["deleted"] >= 4
    assert c.get("/lab/logs").json()["runs"] == []


def test_jobs_stream_progress_and_stop(client_for):
    c = client_for()
    lab = c.app.state.lab
    started = threading.Event()

    def slow(ctx):
        for i in range(400):
            started.set()
            ctx.progress(i, 400, "working")
            time.sleep(0.01)
        return {"done": True}

    job = lab.jobs.submit("demo", slow)
    started.wait(5)
    with c.stream("GET", f"/lab/jobs/{job.id}/events") as s:
        lines = s.iter_lines()
        first = json.loads(next(ln for ln in lines if ln.startswith("data: "))[6:])
        assert first["id"] == job.id and first["status"] == "running"
        assert c.post(f"/lab/jobs/{job.id}/stop").status_code == 200
        rest = [ln[6:] for ln in lines if ln.startswith("data: ")]
    assert rest[-1] == "[DONE]" and json.loads(rest[-2])["status"] == "cancelled"
    assert c.get(f"/lab/jobs/{job.id}").json()["status"] == "cancelled"
    assert c.get("/lab/jobs/job-0-nothere").status_code == 404
    quick = lab.jobs.submit("demo", lambda ctx: ctx.event(step=1, loss=2.5) or 7)
    assert wait_job(c, quick.id)["result"] == 7
    assert c.get(f"/lab/jobs/{quick.id}", params={"events": True}).json()["events"][0]["loss"] == 2.5
    failing = lab.jobs.submit("demo", lambda ctx: 1 / 0)
    failed = wait_job(c, failing.id)
    assert failed["status"] == "failed" and "ZeroDivisionError" in failed["error"]["message"]


def test_models_listing_and_fit(client_for):
    c = client_for()
    names = [m["name"] for m in c.get("/lab/models").json()["models"]]
    assert "smollm2-135m" in names
    fit = c.get("/lab/models/fit", params={"model": "smollm2-135m"})
    assert fit.status_code == 200 and fit.json()["verdict"]
    assert c.post("/lab/models/load", json={"model": "warm"}).json()["loaded"][0]["name"] == "warm"


def test_search_answers_during_the_dense_phase_of_a_background_ingest(client_for, monkeypatch):
    """Phase 1 commits, the job blocks inside phase 2, and a search still answers (lexically)."""
    from llmlab.testing.fake_embedder import HashEmbedder

    entered, release = threading.Event(), threading.Event()
    real = HashEmbedder.embed_documents

    def slow(self, texts):
        if len(texts) > 1:  # a dense batch (the fingerprint embeds one text)
            entered.set()
            assert release.wait(60)
        return real(self, texts)

    monkeypatch.setattr(HashEmbedder, "embed_documents", slow)
    c = client_for()
    r = c.post("/lab/rag/upload", data={"collection": "docs", "tokenizer": "simple"},
               files=[("files", ("cities.md", DOC.encode(), "text/markdown"))])
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    try:
        assert entered.wait(60), "the dense phase never started"
        job = c.get(f"/lab/jobs/{job_id}").json()
        assert job["status"] == "running" and job["progress"]["phase"] == "dense"
        hits = c.post("/lab/rag/search", json={"query": "한강이 도시를 가로지른다", "collection": "docs"}).json()["hits"]
        assert hits and "서울" in hits[0]["text"] and "dense" not in hits[0]["scores"]
        info = c.get("/lab/rag/collections/docs").json()
        assert info["status"]["dense"]["done"] == 0 and info["status"]["unfinished"]
    finally:
        release.set()
    job = wait_job(c, job_id)
    assert job["status"] == "succeeded" and job["result"]["dense"]["done"] == job["result"]["dense"]["total"]
    hits = c.post("/lab/rag/search", json={"query": "한강이 도시를 가로지른다", "collection": "docs"}).json()["hits"]
    assert "dense" in hits[0]["scores"]


def test_ingest_of_nothing_fails_the_job_and_makes_no_collection(client_for):
    c = client_for()
    r = c.post("/lab/rag/upload", data={"collection": "empty", "tokenizer": "simple"},
               files=[("files", ("blank.txt", b"   \n", "text/plain"))])
    job = wait_job(c, r.json()["id"])
    assert job["status"] == "failed" and "every input was skipped" in job["error"]["message"]
    assert c.get("/lab/rag/collections").json()["collections"] == []
