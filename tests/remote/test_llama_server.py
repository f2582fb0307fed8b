"""The ``openai`` backend and the OpenAI-compatible embedder against a real third-party server.

llama.cpp's ``llama-server`` on the bundled GGUF stands in for vLLM or a hosted API: streaming
chat and completions with ``n``, ``logprobs``, stop strings, ``max_new_tokens`` and the
``llamacpp`` profile's ``top_k``/``repetition_penalty``; the ledger and usage from the
server's own token counts; ``rag ingest --embedder openai:…`` against a second instance in
embedding mode; and the failure modes — a server that is not running, one killed in the
middle of an answer, a timeout, and 5xx / 429 with Retry-After through a fault proxy.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from llmlab.errors import BackendError, UnsupportedParameterError
from llmlab.models.model import load_model

from .conftest import MODEL_ID, LlamaServer, free_port
from .faultproxy import Fault, FaultProxy

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "Name three colours."}]


def remote(**options):
    return load_model(f"openai:{MODEL_ID}", api_key="", **options)


def cli(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmlab.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_streamed_chat_with_n_logprobs_stop_and_max_tokens(remote_env):
    model = remote()
    try:
        stream = model.stream_chat(QUESTION, max_new_tokens=24, temperature=0.8, seed=7,
                                   num_return_sequences=2, logprobs=2)
        deltas = list(stream)
        c = stream.completion
        assert c is not None and c.backend == "openai"
        assert len(c.sequences) == 2 and {d.index for d in deltas} == {0, 1}
        for i, seq in enumerate(c.sequences):
            assert seq.text == "".join(d.text for d in deltas if d.index == i) and seq.text.strip()
            assert seq.logprobs and all(len(t.top) <= 2 and t.logprob <= 0 for t in seq.logprobs)
        # the server's own usage: prompt tokens from its tokenizer, completions within the budget
        assert c.usage.prompt_tokens > 5 and 0 < c.usage.completion_tokens <= 48

        greedy = model.chat(QUESTION, max_new_tokens=40, temperature=0)
        words = greedy.text.split()
        assert len(words) >= 3, greedy.text
        stop = words[2]
        cut = model.chat(QUESTION, max_new_tokens=40, temperature=0, stop=[stop])
        assert stop not in cut.text and greedy.text.startswith(cut.text.rstrip())
        short = model.chat(QUESTION, max_new_tokens=3, temperature=0)
        assert short.finish_reason == "length" and short.usage.completion_tokens == 3
    finally:
        model.close()


def test_the_llamacpp_profile_passes_top_k_and_repetition_penalty(remote_env):
    model = remote()
    try:
        greedy = model.chat(QUESTION, max_new_tokens=16, temperature=0)
        # top_k=1 with sampling on is greedy: the server really received and applied top_k
        top1 = model.chat(QUESTION, max_new_tokens=16, temperature=1.5, top_k=1, seed=3)
        assert top1.text == greedy.text
        penalized = model.chat(QUESTION, max_new_tokens=16, temperature=0, repetition_penalty=1.3)
        assert penalized.text.strip()
    finally:
        model.close()
    openai_profile = remote(profile="openai")
    try:
        with pytest.raises(UnsupportedParameterError, match="top_k"):
            openai_profile.chat(QUESTION, top_k=5)
    finally:
        openai_profile.close()


def test_cli_generate_records_the_remotes_token_counts(remote_env):
    r = cli(remote_env, "generate", "--model", f"openai:{MODEL_ID}", "--max-new-tokens", "12", "--greedy",
            "--json", "The capital of France is")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["backend"] == "openai" and out["usage"]["completion_tokens"] > 0
    db = sqlite3.connect(Path(remote_env["LLMLAB_HOME"]) / "ledger.db")
    try:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        db.close()
    assert row["backend"] == "openai"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (out["usage"]["prompt_tokens"],
                                                                out["usage"]["completion_tokens"])


def test_rag_ingest_with_the_remote_embedder(tmp_path, embedding_server, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "library.md").write_text("# 도서관 규정\n\n제2조(휴관일) 도서관은 매주 월요일과 법정 공휴일에 쉰다.\n",
                                     encoding="utf-8")
    (docs / "travel.md").write_text("# 출장 규정\n\n제5조(숙박비) 출장 숙박비는 1박에 12만 원까지 지급한다.\n",
                                    encoding="utf-8")
    env = {**__import__("os").environ, "LLMLAB_HOME": str(tmp_path / "home"),
           "LLMLAB_API_BASE": embedding_server.url + "/v1", "LLMLAB_API_PROFILE": "llamacpp"}
    env.pop("OPENAI_API_KEY", None)
    with FaultProxy(embedding_server.url) as proxy:
        env["LLMLAB_API_BASE"] = proxy.url + "/v1"
        proxy.faults = [Fault(), Fault(status=503, headers={"Retry-After": "0"})]  # the 2nd call fails once
        r = cli(env, "rag", "ingest", str(docs), "-c", "remote", "--embedder", f"openai:{MODEL_ID}", "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["documents"] == 2
        assert proxy.paths.count("/v1/embeddings") >= 3  # probe, the failed call and its retry
    r = cli({**env, "LLMLAB_API_BASE": embedding_server.url + "/v1"}, "rag", "search", "도서관 휴관일",
            "-c", "remote", "--mode", "dense", "--json")
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)["hits"]
    assert hits, "dense search over the remote embedder's vectors found nothing"
    assert {Path(h["source"]).name for h in hits} <= {"library.md", "travel.md"}


def test_a_server_that_is_not_running_is_a_clear_error(tmp_path):
    env = {**__import__("os").environ, "LLMLAB_HOME": str(tmp_path / "home"),
           "LLMLAB_API_BASE": f"http://127.0.0.1:{free_port()}/v1"}
    r = cli(env, "generate", "--model", f"openai:{MODEL_ID}", "--max-new-tokens", "4", "hello")
    assert r.returncode == 1
    assert "cannot reach" in r.stderr and "Is the server running" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_server_killed_mid_stream_is_a_lab_error(llama_server_bin, remote_env, monkeypatch):
    server = LlamaServer(llama_server_bin).start()
    monkeypatch.setenv("LLMLAB_API_BASE", server.url + "/v1")
    model = remote()
    try:
        stream = model.stream_chat([{"role": "user", "content": "Write a long story about the sea."}],
                                   max_new_tokens=2000, temperature=0.9, seed=1)
        got = []
        with pytest.raises(BackendError, match="broke during the answer|ended early"):
            for delta in stream:
                got.append(delta.text)
                if len(got) == 5:
                    server.stop()
        assert len(got) >= 5
    finally:
        model.close()
        server.stop()


def test_a_silent_server_times_out_with_a_hint(chat_server, remote_env):
    with FaultProxy(chat_server.url) as proxy:
        proxy.faults = [Fault(delay=3.0)]
        model = remote(base_url=proxy.url + "/v1", timeout=1.0, max_retries=0)
        try:
            with pytest.raises(BackendError, match=r"no answer .* within 1s; .*timeout"):
                model.chat(QUESTION, max_new_tokens=4)
        finally:
            model.close()


def test_5xx_and_429_with_retry_after_are_retried_then_surface(chat_server, remote_env):
    with FaultProxy(chat_server.url) as proxy:
        proxy.faults = [Fault(status=503, headers={"Retry-After": "0"}),
                        Fault(status=429, headers={"Retry-After": "0"})]
        model = remote(base_url=proxy.url + "/v1", max_retries=3)
        try:
            c = model.chat(QUESTION, max_new_tokens=6, temperature=0)
            assert c.text.strip() and proxy.paths.count("/v1/chat/completions") == 3
            # a server that asks to wait longer than max_retry_wait is not retried
            proxy.faults = [Fault(status=429, headers={"Retry-After": "3600"})]
            with pytest.raises(BackendError, match=r"rate-limiting.*HTTP 429.*3600s"):
                model.chat(QUESTION, max_new_tokens=6)
            proxy.faults = [Fault(status=502)] * 2
            retried = remote(base_url=proxy.url + "/v1", max_retries=1, max_retry_wait=0.1)
            try:
                with pytest.raises(BackendError, match="HTTP 502"):
                    retried.chat(QUESTION, max_new_tokens=6)
            finally:
                retried.close()
        finally:
            model.close()
