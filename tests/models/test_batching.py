"""Continuous batching: concurrent requests share one decode loop (fake and real model)."""
import json
import threading
import time

import pytest

from llmlab.errors import BusyError
from llmlab.models.model import load_model
from llmlab.testing.contract import GenerationContract, StructuralContract
from llmlab.types import HANDOFF, PENDING


def fake(**kw):
    return load_model("fake", backend="fake", ledger=False, **kw)


def run_concurrently(fns):
    results, errors = [None] * len(fns), []

    def wrap(i, f):
        try:
            results[i] = f()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(i, f)) for i, f in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_concurrent_requests_match_their_solo_results():
    m = fake(delay_s=0.002)
    prompts = [f"prompt number {i}" for i in range(8)]
    solo = [m.generate(p, max_new_tokens=30, seed=i).text for i, p in enumerate(prompts)]
    together = run_concurrently([lambda p=p, i=i: m.generate(p, max_new_tokens=30, seed=i).text
                                 for i, p in enumerate(prompts)])
    assert together == solo


def test_requests_are_batched_not_serialized():
    m = fake(delay_s=0.01)  # every batched step costs 10 ms whatever its size
    t0 = time.perf_counter()
    m.generate("a", max_new_tokens=20, temperature=0)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_concurrently([lambda: m.generate("a", max_new_tokens=20, temperature=0) for _ in range(6)])
    six = time.perf_counter() - t0
    assert six < 3 * one  # serial execution would take ~6x


def test_scripted_replies_stay_with_their_request():
    m = fake(replies=["first reply", "second reply", "third reply"])
    out = run_concurrently([lambda: m.generate("same", max_new_tokens=40).text for _ in range(3)])
    assert sorted(out) == ["first reply", "second reply", "third reply"]


def test_closing_a_stream_cancels_and_frees_its_slots():
    m = fake(delay_s=0.005)
    s = m.stream("x", max_new_tokens=500, temperature=0)
    it = iter(s)
    next(it)
    s.close()
    deadline = time.time() + 5
    while time.time() < deadline and m.backend.scheduler.load["active"]:
        time.sleep(0.01)
    assert m.backend.scheduler.load == {"active": 0, "waiting": 0, "free_slots": 8, "slots": 8}
    assert m.generate("y", max_new_tokens=3, temperature=0).usage.completion_tokens == 3


def test_bounded_queue_says_busy_instead_of_growing():
    from llmlab.models.batching import Scheduler
    from llmlab.types import GenerationParams

    m = fake(delay_s=0.02, context_length=4096)  # room for eight 300-token requests
    m.backend.scheduler.close()
    sched = m.backend.scheduler = Scheduler(m.backend.engine, max_waiting=2)
    submit = lambda: sched.submit([1, 2, 3], GenerationParams(max_new_tokens=300, temperature=0),  # noqa: E731
                                  piece=str)
    running = []
    for _ in range(8):  # eight fill the slots
        running.append(submit())
        next(running[-1])
    waiting = [submit(), submit()]  # two may wait
    with pytest.raises(BusyError) as e:
        submit()
    assert e.value.retry_after_s >= 1 and "waiting" in str(e.value)
    for it in running:
        it.close()  # cancelling frees slots: the waiting ones are admitted
    assert next(waiting[0]) is not None and next(waiting[1]) is not None
    for it in waiting:
        it.close()
    sched.close()


def test_requests_wait_for_kv_cells_instead_of_overflowing():
    m = fake(delay_s=0.002, context_length=256)  # room for one 150-token request at a time
    out = run_concurrently([lambda: m.generate("q", max_new_tokens=150, temperature=0).usage.completion_tokens
                            for _ in range(3)])
    assert out == [150, 150, 150]


class TestFakeContractUnderLoad(GenerationContract):
    """The parameter contract holds for requests batched with others."""

    @pytest.fixture
    def model(self):
        m = fake()
        stop = threading.Event()

        def background():
            while not stop.is_set():
                m.generate("background load", max_new_tokens=8, seed=1)

        t = threading.Thread(target=background, daemon=True)
        t.start()
        yield m
        stop.set()
        t.join(10)


@pytest.mark.slow
class TestLlamaCppContractUnderLoad(StructuralContract):
    """The contract on the real model while another client keeps the batch busy (see ExactContract)."""

    @pytest.fixture(scope="class")
    @classmethod
    def loaded(cls):
        m = load_model("smollm2-135m", threads=1, ledger=False)
        stop = threading.Event()

        def background():
            while not stop.is_set():
                m.generate("Write a long story about a dragon.", max_new_tokens=16, seed=1)

        t = threading.Thread(target=background, daemon=True)
        t.start()
        yield m
        stop.set()
        t.join(30)
        m.close()

    @pytest.fixture
    def model(self, loaded):
        return loaded


def test_prompts_that_arrive_together_are_prefilled_in_one_call():
    m = fake(delay_s=0.05)  # each decode step takes 50 ms: the burst lands within one step
    eng = m.backend.engine
    first = m.stream("keep the loop busy", max_new_tokens=200, temperature=0)
    it = iter(first)
    next(it)
    out = run_concurrently([lambda i=i: m.generate(f"burst prompt {i}", max_new_tokens=5, temperature=0).text
                            for i in range(6)])
    first.close()
    assert all(out)
    assert max(len(call) for call in eng.prefill_calls) >= 3, eng.prefill_calls
    # batched admission changes nothing about what each request gets
    assert out == [m.generate(f"burst prompt {i}", max_new_tokens=5, temperature=0).text for i in range(6)]


def test_the_prefill_budget_spreads_a_burst_of_long_prompts_over_steps():
    m = fake(delay_s=0.05, context_length=4096)
    eng, sched = m.backend.engine, m.backend.scheduler
    sched.prefill_budget = 100
    first = m.stream("keep the loop busy", max_new_tokens=200, temperature=0)
    it = iter(first)
    next(it)
    long = "x" * 80  # 80 byte tokens each: two of them exceed the budget
    run_concurrently([lambda i=i: m.generate(f"{i}{long}", max_new_tokens=3, temperature=0) for i in range(4)])
    first.close()
    burst = [c for c in eng.prefill_calls if c and c[0] > 50]
    assert sum(len(c) for c in burst) == 4
    assert all(len(c) == 1 for c in burst), burst  # never two long prompts in one step


def test_a_failing_prompt_in_a_batched_prefill_fails_alone():
    from llmlab.errors import BackendError

    m = fake(delay_s=0.05)
    eng = m.backend.engine
    real_prefill = eng.prefill

    def prefill(items):
        if any(ids[-1:] == [ord("!")] for _, ids in items):
            raise BackendError("simulated failure")
        return real_prefill(items)

    eng.prefill = prefill
    first = m.stream("keep the loop busy", max_new_tokens=200, temperature=0)
    it = iter(first)
    next(it)
    results = [None] * 4

    def call(i):
        try:
            results[i] = m.generate(f"prompt {i}" + ("!" if i == 2 else ""), max_new_tokens=4, temperature=0).text
        except BackendError as e:
            results[i] = e

    run_concurrently([lambda i=i: call(i) for i in range(4)])
    first.close()
    assert isinstance(results[2], BackendError)
    assert all(isinstance(r, str) and r for i, r in enumerate(results) if i != 2), results


GIL_PROBE = """
import json
import sys
from llmlab.config import Settings
from llmlab.models.batching import GIL_SWITCH_INTERVAL_S as FAST
from llmlab.models.model import load_model

def fake():
    return load_model("fake", backend="fake", settings=Settings(home=sys.argv[1], ledger=False), replies=["a"])

sys.setswitchinterval(0.005)
a, b = fake(), fake()
seen = [sys.getswitchinterval()]            # lowered while decode loops run
a.close()
seen.append(sys.getswitchinterval())        # still lowered: one loop is left
b.close()
seen.append(sys.getswitchinterval())        # restored when the last one ends
sys.setswitchinterval(0.0001)
c = fake()
seen.append(sys.getswitchinterval())        # never raised
c.close()
print(json.dumps({"seen": seen, "fast": FAST}))
"""


def test_the_gil_switch_interval_is_lowered_only_while_decode_loops_run(tmp_path):
    """A process-wide setting: lowered by the first decode loop, restored after the last, never raised."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", GIL_PROBE, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    fast = out["fast"]
    assert out["seen"] == pytest.approx([fast, fast, 0.005, 0.0001])


def test_a_request_that_waits_past_the_queue_timeout_fails_and_the_next_is_served():
    from llmlab.errors import QueueTimeoutError

    m = fake(delay_s=0.01, parallel=1, queue_timeout_s=0.2, context_length=4096)
    busy = m.stream("x", max_new_tokens=3000, temperature=0)
    next(iter(busy))  # the only slot is taken for ~30 s
    with pytest.raises(QueueTimeoutError) as e:
        m.generate("y", max_new_tokens=2, temperature=0)
    assert e.value.retry_after_s >= 1 and "waited" in str(e.value)
    busy.close()  # the slot frees; a new request is served at once
    assert m.generate("y", max_new_tokens=2, temperature=0).usage.completion_tokens == 2
    m.close()


def test_min_new_tokens_holds_back_the_end_token():
    m = fake(replies=["hi"])
    assert m.generate("p", max_new_tokens=20, temperature=0).usage.completion_tokens == 3  # "h", "i", end
    c = m.generate("p", max_new_tokens=20, min_new_tokens=9, temperature=0)
    assert c.usage.completion_tokens >= 9 and c.text.startswith("hi")
    m.close()


def test_a_request_arriving_during_decoding_is_evaluated_with_the_running_step():
    """An arrival does not cost the running streams a separate evaluation: its prompt goes into
    the same batched call as their next tokens (step_and_prefill), and both get what they get alone."""
    m = fake(delay_s=0.05)
    eng = m.backend.engine
    calls = []
    real = eng.step_and_prefill

    def spy(entries, items):
        calls.append((len(entries), len(items)))
        return real(entries, items)

    eng.step_and_prefill = spy
    first = m.stream("keep the loop busy", max_new_tokens=60, temperature=0)
    it = iter(first)
    next(it)
    late = m.generate("a late arrival", max_new_tokens=5, temperature=0).text
    rest = "".join(d.text for d in it)
    assert calls and all(n_entries >= 1 and n_items >= 1 for n_entries, n_items in calls), calls
    alone = fake()
    assert late == alone.generate("a late arrival", max_new_tokens=5, temperature=0).text
    assert rest and first.completion.sequences[0].completion_tokens == 60


def test_a_prompt_sharing_only_a_start_takes_an_empty_slot_when_the_engine_shares_prefixes():
    """With an engine that starts any prompt from the longest prefix cached in any slot, a new
    conversation that shares only a system prompt with a cached one goes to an empty slot, so the
    cached conversation stays whole for its next turn."""
    m = fake()
    eng = m.backend.engine
    eng.shares_prefixes = True
    system = "You are a helpful assistant. "
    m.generate(system + "first conversation", max_new_tokens=3, temperature=0)
    held = [s for s in range(eng.n_slots) if eng.cached_len(s)]
    assert len(held) == 1
    before = list(eng._tokens[held[0]])
    m.generate(system + "another conversation", max_new_tokens=3, temperature=0)
    assert eng._tokens[held[0]] == before  # not overwritten
    assert len([s for s in range(eng.n_slots) if eng.cached_len(s)]) == 2
    # without prefix sharing the slot with the longer own prefix is still the one reused
    m2 = fake()
    e2 = m2.backend.engine
    m2.generate(system + "first conversation", max_new_tokens=3, temperature=0)
    m2.generate(system + "another conversation", max_new_tokens=3, temperature=0)
    assert len([s for s in range(e2.n_slots) if e2.cached_len(s)]) == 1


def test_a_prompt_goes_back_to_the_slot_that_holds_it_rather_than_one_that_only_shares_its_start():
    """With prefix sharing, every free slot 'has' the longest cached prefix; the one that holds it itself
    wins. (Before: a slot with a shorter conversation won the tie, so the prompt moved, the other
    conversation's cache was cut to the shared start, and eight clients coming back at once had their
    prompts evaluated again: 0.6 s to the first token instead of 0.03 s on the bundled model.)"""
    m = fake()
    eng = m.backend.engine
    eng.shares_prefixes = True
    system = "You are a helpful assistant. "
    long_reply, short_reply = system + "Q", system + "Zed: another conversation, longer prompt"
    m.generate(long_reply, max_new_tokens=20, min_new_tokens=20, temperature=0)
    m.generate(short_reply, max_new_tokens=1, temperature=0)
    ids_long, ids_short = (m.backend.tokenize(p, add_special=True) for p in (long_reply, short_reply))

    def holding(ids):
        return [s for s in range(eng.n_slots) if eng._tokens[s][:len(ids)] == ids]

    (slot_long,), (slot_short,) = holding(ids_long), holding(ids_short)
    held_long, held_short = list(eng._tokens[slot_long]), list(eng._tokens[slot_short])
    assert len(held_long) > len(held_short) - (len(ids_short) - len(ids_long))  # the tie the old rule got wrong
    m.generate(long_reply, max_new_tokens=2, temperature=0)
    assert holding(ids_long) == [slot_long]  # back in its own slot, not copied into another
    assert eng._tokens[slot_long] != held_long  # (it did run there: its old continuation was replaced)
    assert eng._tokens[slot_short] == held_short  # the other conversation kept its cache
    m.close()


def test_generate_and_chat_ask_the_decode_loop_for_no_deltas_and_stream_still_gets_them():
    m = fake(replies=["hello world, a reply of several tokens"])
    seen = []
    real = m.backend.scheduler.submit

    def spy(*a, **kw):
        seen.append(kw.get("deltas", True))
        return real(*a, **kw)

    m.backend.scheduler.submit = spy
    c = m.generate("p", max_new_tokens=40, temperature=0)
    assert c.text == "hello world, a reply of several tokens" and c.first_token_s is not None
    m.chat("hi", max_new_tokens=40, temperature=0)
    streamed = [d.text for d in m.stream("p", max_new_tokens=40, temperature=0)]
    assert seen == [False, False, True]
    assert len(streamed) > 5 and "".join(streamed) == c.text
    m.close()


# -- a reader that must not block (the server's event loop): models.streaming.reading ----------------
def _read_without_blocking(it, first):
    """Drive a stream the way the event loop does: on PENDING wait for a wake, never in the stream."""
    items = [first]
    ev = first
    while True:
        if ev is PENDING:
            assert _WOKEN.wait(5), "a PENDING stream was never woken"
            _WOKEN.clear()
        try:
            ev = next(it)
        except StopIteration:
            return items
        items.append(ev)


_WOKEN = threading.Event()


def test_a_reader_that_must_not_block_gets_pending_is_woken_per_item_and_gets_handoff_before_the_result():
    from llmlab.models.streaming import Reader, reading
    from llmlab.types import Completion, Delta, GenerationParams, ReaderSignal

    m = fake(replies=["안녕하세요, 반갑습니다"], delay_s=0.003)
    wakes = []

    def wake():
        wakes.append(threading.current_thread().name)
        _WOKEN.set()

    reader = Reader(wake)
    _WOKEN.clear()
    with reading(reader):
        it = iter(m.backend.stream("hi", GenerationParams(max_new_tokens=64)))
        first = next(it)  # submits the request: the reader is taken then
    assert reader.attached
    items = _read_without_blocking(it, first)
    deltas = [x for x in items if isinstance(x, Delta)]
    assert "".join(d.text for d in deltas) == "안녕하세요, 반갑습니다"
    assert PENDING in items  # the stream said "nothing yet" instead of blocking
    assert items[-2:][0] is HANDOFF and isinstance(items[-1], Completion)  # the end is read in a thread
    assert items.count(HANDOFF) == 1
    assert not any(isinstance(x, ReaderSignal) for x in items[items.index(HANDOFF) + 1:])
    assert len(wakes) >= len(deltas) and set(wakes) == {"llmlab-decode"}  # the decode thread wakes the reader
    assert items[-1].text == "안녕하세요, 반갑습니다"

    # the reader is taken once: a second stream in the same block, and any stream outside it, block as before
    with reading(reader):
        second = list(m.backend.stream("hi", GenerationParams(max_new_tokens=64)))
    assert not any(isinstance(x, ReaderSignal) for x in second)
    plain = list(m.backend.stream("hi", GenerationParams(max_new_tokens=64)))
    assert not any(isinstance(x, ReaderSignal) for x in plain)
    m.close()


def test_closing_a_stream_read_without_blocking_frees_its_slot():
    from llmlab.models.streaming import Reader, reading
    from llmlab.testing.waiting import wait_until
    from llmlab.types import GenerationParams

    m = fake(replies=["가나다라마바사" * 200], delay_s=0.003)
    sched = m.backend.scheduler
    with reading(Reader(lambda: None)):
        it = iter(m.backend.stream("hi", GenerationParams(max_new_tokens=2000)))
        next(it)
    assert wait_until(lambda: sched.load["active"] == 1)
    it.close()  # suspended at PENDING: nothing is inside it, so it closes at once
    assert wait_until(lambda: sched.load["active"] == 0 and sched.load["free_slots"] == 8), sched.load
    m.close()


# -- one decode thread for every scheduler of the process (one OpenMP team) --------------------------
def _in_a_fresh_process(code: str) -> str:
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "LLMLAB_LEDGER": "false"})
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_every_scheduler_shares_the_decode_thread_which_ends_with_the_last_one():
    code = """
import threading
from llmlab.models.model import load_model
from llmlab.models import batching
a = load_model("a", backend="fake", ledger=False, replies=["하나"])
b = load_model("b", backend="fake", ledger=False, replies=["둘"])
assert a.generate("x").text == "하나" and b.generate("y").text == "둘"
decoder = a.backend.scheduler._decoder
assert b.backend.scheduler._decoder is decoder
assert [t.name for t in threading.enumerate()].count("llmlab-decode") == 1
a.close()
assert b.generate("y").text == "둘"  # closing one model leaves the other running
b.close()
decoder.thread.join(10)
assert not decoder.thread.is_alive() and batching._DecodeThread._current is None
c = load_model("c", backend="fake", ledger=False, replies=["셋"])  # a later model starts a new one
assert c.generate("z").text == "셋" and c.backend.scheduler._decoder is not decoder
c.close()
print("ok")
"""
    assert _in_a_fresh_process(code) == "ok"


def test_a_second_llamacpp_model_adds_no_openmp_team():
    """Each thread that runs a llama.cpp step keeps an OpenMP team; two teams on a small machine
    halve every model's decoding (75 against 150 tok/s on 2 cores). A second model that generates
    must add no thread: its steps run on the same decode thread, in the same team."""
    code = """
import os
from llmlab.models.model import load_model
def threads(): return len(os.listdir("/proc/self/task"))
a = load_model("smollm2-135m", threads=2, ledger=False)
a.generate("Hello", max_new_tokens=4, temperature=0)
n1 = threads()
b = load_model("smollm2-135m", threads=2, ledger=False)
b.generate("Hello", max_new_tokens=4, temperature=0)
a.generate("Hello again", max_new_tokens=4, temperature=0)
print(n1, threads())
"""
    n1, n2 = map(int, _in_a_fresh_process(code).split())
    assert n2 == n1, (n1, n2)


def test_a_forked_child_starts_its_own_decode_thread():
    code = """
import os, signal
from llmlab.models.model import load_model
a = load_model("a", backend="fake", ledger=False, replies=["부모"])
assert a.generate("x").text == "부모"
pid = os.fork()
if pid == 0:  # the parent's decode thread does not exist here
    signal.alarm(20)
    b = load_model("b", backend="fake", ledger=False, replies=["자식"])
    os._exit(0 if b.generate("y").text == "자식" else 1)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""
    assert _in_a_fresh_process(code) == "child 0"
