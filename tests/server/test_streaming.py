"""Streaming against a live uvicorn server: disconnects cancel, bursts stay bounded."""
from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from llmlab.models.model import load_model
from llmlab.server.pool import ModelPool

from .conftest import live_server, make_app
from llmlab.testing.waiting import wait_until

LONG = "가나다라마바사" * 600  # thousands of byte tokens: runs far longer than the test waits



def test_client_disconnect_stops_generation():
    app = make_app(replies=[LONG], fake={"context_length": 32768, "delay_s": 0.01})
    pool = app.state.lab.pool
    with live_server(app) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            with client.stream("POST", "/v1/chat/completions", json={
                    "model": "m", "stream": True, "max_tokens": 4000,
                    "messages": [{"role": "user", "content": "말해 줘"}]}) as r:
                assert r.status_code == 200
                lines = r.iter_lines()
                got = [next(lines) for _ in range(6)]
                assert any("가" in ln for ln in got)
                sched = pool.get_loaded("m").backend.scheduler
                assert sched.load["active"] == 1
            # leaving the block closes the connection mid-stream
        assert wait_until(lambda: sched.load == {"active": 0, "waiting": 0, "free_slots": 8, "slots": 8}), sched.load
        assert wait_until(lambda: app.state.lab.admission.in_flight == 0)
        assert pool.loaded()[0]["in_use"] == 0
        completed = pool.get_loaded("m").backend.engine  # the fake engine: nothing left running in its slots
        assert completed is not None


def _burst(url: str, n: int, body: dict) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            async def one() -> httpx.Response:
                r = await client.post("/v1/chat/completions", json=body)
                await r.aread()
                return r

            return await asyncio.gather(*(one() for _ in range(n)))

    return asyncio.run(run())


def test_burst_of_50_is_bounded_by_admission():
    app = make_app(replies=["짧은 대답입니다."], fake={"delay_s": 0.005}, max_concurrent_requests=8)
    peak = {"threads": 0}
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak["threads"] = max(peak["threads"], threading.active_count())
            time.sleep(0.005)

    w = threading.Thread(target=watch, daemon=True)
    with live_server(app) as url:
        base = threading.active_count()  # threads earlier tests left behind in this process
        w.start()
        responses = _burst(url, 50, {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True})
        stop.set()
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 8 and statuses.count(429) >= 1
    for r in responses:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["code"] == "server_busy"
        else:
            assert r.text.endswith("data: [DONE]\n\n")
    # threads: the server's bounded pool, never one per request of the burst
    assert peak["threads"] - base < 8 + 16 + 20


def test_burst_of_50_is_bounded_by_the_model_queue():
    def loader(name: str):
        m = load_model(name, backend="fake", replies=["대기열"], delay_s=0.005)
        m.backend.scheduler.max_waiting = 4
        return m

    app = make_app(ModelPool(loader, resolver=lambda n: "fake"), max_concurrent_requests=64)
    with live_server(app) as url:
        responses = _burst(url, 50, {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        in_flight_after = app.state.lab.admission.in_flight
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(429) >= 1 and statuses.count(200) >= 4
    assert all(r.headers.get("retry-after") for r in responses if r.status_code == 429)
    assert all(r.json()["choices"][0]["message"]["content"] == "대기열" for r in responses if r.status_code == 200)
    assert in_flight_after == 0


def _abandon_after(url: str, path: str, body: dict, seconds: float) -> None:
    """Send a non-streaming request and hang up before its answer comes."""
    async def run() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            try:
                await asyncio.wait_for(client.post(path, json=body), timeout=seconds)
            except asyncio.TimeoutError:
                return
        raise AssertionError("the request finished before the client hung up")

    asyncio.run(run())


@pytest.mark.parametrize("path, body", [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "말해 줘"}]}),
    ("/v1/completions", {"prompt": "말해 줘"}),
])
def test_client_disconnect_stops_a_non_streaming_generation(path, body):
    app = make_app(replies=[LONG], fake={"context_length": 32768, "delay_s": 0.01})
    pool = app.state.lab.pool
    with live_server(app) as url:
        # 4000 tokens at 10 ms each: 40 s if nobody stops it
        _abandon_after(url, path, {"model": "m", "max_tokens": 4000, **body}, seconds=1.5)
        sched = pool.get_loaded("m").backend.scheduler
        # freed long before the 40 s the generation would run (15 s leaves room for a loaded machine)
        assert wait_until(lambda: sched.load == {"active": 0, "waiting": 0, "free_slots": 8, "slots": 8}, 15), sched.load
        assert wait_until(lambda: app.state.lab.admission.in_flight == 0)
        assert pool.loaded()[0]["in_use"] == 0
        # the server goes on answering: a short request on the same model still works
        r = httpx.post(f"{url}{path}", json={"model": "m", "max_tokens": 3, **body}, timeout=30)
        assert r.status_code == 200, r.text


def test_async_stream_hands_over_what_piled_up_in_one_batch_and_errors_after_the_items():
    """One worker pumps the whole stream: pieces produced while the reader was busy come together
    (one SSE write for all of them), an error raised by the stream arrives after the pieces before it,
    and close() stops a stream the worker is blocked in once its running step returns."""
    import asyncio
    import concurrent.futures
    import threading

    from llmlab.server.streaming import AsyncStream

    pool = concurrent.futures.ThreadPoolExecutor(2)

    def pieces():
        yield from ["a", "b", "c"]
        raise ValueError("boom")

    async def batches():
        s = AsyncStream(pieces(), pool)
        first = await s.next()
        await asyncio.sleep(0.2)  # the worker runs ahead meanwhile
        rest = await s.next_batch()
        with pytest.raises(ValueError, match="boom"):
            await s.next_batch()
        return first, rest, await s.next_batch()

    assert asyncio.run(batches()) == ("a", ["b", "c"], [])

    release, closed = threading.Event(), threading.Event()

    class Blocking:
        def __iter__(self):
            yield "x"
            release.wait(5)  # a decode step in progress
            yield "y"
            yield "z"

        def close(self):
            closed.set()

    async def closing():
        s = AsyncStream(Blocking(), pool)
        assert await s.next() == "x"
        s.close()
        assert not closed.is_set()  # the worker is inside the stream: it closes it after the step
        release.set()
        await asyncio.get_running_loop().run_in_executor(None, closed.wait, 5)
        return closed.is_set(), await s.next()

    assert asyncio.run(closing()) == (True, None)
    pool.shutdown()


def _recorded(stream, log):
    """Pass ``stream`` through, noting which thread advanced it to each item (and to its end)."""
    class Recorded:
        @property
        def completion(self):
            return stream.completion

        def __iter__(self):
            for item in stream:
                log.append((item, threading.current_thread()))
                yield item
            log.append(("end", threading.current_thread()))

        def close(self):
            stream.close()

    return Recorded()


def test_a_local_stream_is_read_on_the_event_loop_and_its_end_in_a_worker():
    """on_loop: after the worker's first step, the loop advances the stream itself when the decode
    thread wakes it (one thread woken per token, not two); the end (the ledger's record, unmasking)
    is read by a worker again, so nothing that may block runs on the loop."""
    import concurrent.futures

    from llmlab.guard.policy import GuardedModel
    from llmlab.server.streaming import AsyncStream
    from llmlab.types import Delta, ReaderSignal

    m = load_model("m", backend="fake", ledger=False, replies=["전화는 [PHONE_1] 입니다. 안녕히 계세요."],
                   delay_s=0.003)
    guarded = GuardedModel(m, "mask")  # the masking guard holds back and unmasks text: signals pass through it
    pool = concurrent.futures.ThreadPoolExecutor(2)
    log = []

    async def read():
        s = AsyncStream(_recorded(guarded.stream_chat("내 번호는 010-1234-5678 이야", max_new_tokens=200), log),
                        pool, on_loop=True)
        out = []
        while True:
            batch = await s.next_batch()
            if not batch:
                return s, out, threading.current_thread()
            out += batch

    s, out, loop_thread = asyncio.run(read())
    assert s.read_on_loop
    assert all(isinstance(d, Delta) for d in out)  # the reader never sees a signal
    assert "".join(d.text for d in out) == s.source.completion.text == "전화는 010-1234-5678 입니다. 안녕히 계세요."
    assert guarded.masker.mapping == {"[PHONE_1]": "010-1234-5678"}  # the model saw the placeholder only
    on_loop = [item for item, t in log if t is loop_thread]
    assert any(isinstance(x, Delta) for x in on_loop)  # tokens were advanced on the loop
    assert isinstance(on_loop[-1], ReaderSignal) and on_loop[-1].name == "HANDOFF"  # ... until the hand-off
    assert log[-1][0] == "end" and log[-1][1] is not loop_thread  # the end (the completion) in a worker
    pool.shutdown()
    m.close()


def test_a_stream_read_on_the_loop_that_is_closed_frees_its_slot_and_a_plain_one_reads_as_before():
    import concurrent.futures

    from llmlab.server.streaming import AsyncStream

    m = load_model("m", backend="fake", ledger=False, replies=[LONG], context_length=32768, delay_s=0.003)
    sched = m.backend.scheduler
    pool = concurrent.futures.ThreadPoolExecutor(2)

    async def read_some():
        s = AsyncStream(m.stream("hi", max_new_tokens=4000), pool, on_loop=True)
        got = [await s.next() for _ in range(5)]
        assert s.read_on_loop and sched.load["active"] == 1
        s.close()
        return got

    assert all(got for got in asyncio.run(read_some()))
    assert wait_until(lambda: sched.load == {"active": 0, "waiting": 0, "free_slots": 8, "slots": 8}), sched.load

    async def plain():  # a stream that knows no readers (a remote API): a worker pumps it all
        s = AsyncStream(iter(["a", "b"]), pool, on_loop=True)
        return [await s.next(), await s.next(), await s.next()], s.read_on_loop

    assert asyncio.run(plain()) == (["a", "b", None], False)
    pool.shutdown()
    m.close()
