"""/metrics (scraped and parsed by prometheus_client's own parser), /health probes, the queue timeout."""
from __future__ import annotations

import threading

import httpx
import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from .conftest import live_server, make_app  # noqa: E402

KEY = "metrics-key-123"


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}, through prometheus_client's parser."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def test_every_series_exists_at_zero_from_startup(client_for):
    c = client_for(models=["m"])
    m = scrape(c)
    model = (("model", "m"),)
    assert m[("llmlab_tokens_total", (("direction", "in"), ("model", "m")))] == 0
    assert m[("llmlab_tokens_total", (("direction", "out"), ("model", "m")))] == 0
    assert m[("llmlab_time_to_first_token_seconds_count", model)] == 0
    assert m[("llmlab_inter_token_seconds_count", model)] == 0
    assert m[("llmlab_queue_depth", model)] == 0
    assert m[("llmlab_slots_busy", model)] == 0
    assert m[("llmlab_slots_free", model)] == 8
    assert m[("llmlab_requests_in_flight", ())] == 0
    chat = ("llmlab_http_requests_total", (("method", "POST"), ("route", "/v1/chat/completions"), ("status", "200")))
    assert m[chat] == 0


def test_a_streamed_chat_is_counted(client_for):
    c = client_for(models=["m"], replies=["안녕하세요, 반갑습니다."])
    r = c.post("/v1/chat/completions", json={"model": "m", "stream": True,
                                             "messages": [{"role": "user", "content": "인사"}]})
    assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n")
    c.get("/v1/nope")  # an unknown path is counted under one label, not its own
    m = scrape(c)
    model = (("model", "m"),)
    out = m[("llmlab_tokens_total", (("direction", "out"), ("model", "m")))]
    assert out == len("안녕하세요, 반갑습니다.".encode()) + 1  # the fake's byte tokens and its end token
    assert m[("llmlab_tokens_total", (("direction", "in"), ("model", "m")))] > 0
    assert m[("llmlab_time_to_first_token_seconds_count", model)] == 1
    assert m[("llmlab_inter_token_seconds_count", model)] > 1
    assert m[("llmlab_http_requests_total", (("method", "POST"), ("route", "/v1/chat/completions"),
                                             ("status", "200")))] == 1
    assert m[("llmlab_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1


def test_metrics_needs_the_key_when_keys_are_set(client_for):
    c = client_for(api_keys=[KEY])
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers={"Authorization": "Bearer wrong-key-000"}).status_code == 401
    assert ("llmlab_requests_in_flight", ()) in scrape(c, Authorization=f"Bearer {KEY}")
    assert c.get("/health/live").status_code == 200  # probes stay open for orchestrators


def test_parallel_sets_the_batch_slots(client_for):
    c = client_for(models=["m"], fake={"parallel": 3})
    h = c.get("/health").json()
    assert (h["slots_free"], h["slots_busy"]) == (3, 0)


def test_a_request_waiting_past_the_queue_timeout_gets_503_with_retry_after():
    app = make_app(replies=["가나다라마바사" * 200], fake={"parallel": 1, "queue_timeout_s": 0.3, "delay_s": 0.01,
                                                          "context_length": 8192})
    with live_server(app) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            body = {"model": "m", "stream": True, "max_tokens": 2000, "messages": [{"role": "user", "content": "길게"}]}
            with client.stream("POST", "/v1/chat/completions", json=body) as first:
                assert first.status_code == 200
                lines = first.iter_lines()  # kept: a dropped iterator would close the stream
                next(lines)  # the only slot is now busy for seconds
                result: dict = {}
                t = threading.Thread(target=lambda: result.update(r=client.post("/v1/chat/completions", json={
                    **body, "stream": False, "max_tokens": 4})))
                t.start()
                t.join(20)
            r = result["r"]
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) >= 1
            assert r.json()["error"]["code"] == "queue_timeout"
