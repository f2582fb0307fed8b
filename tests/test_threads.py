"""The start-up thread policy: all cores when idle, the free ones (waiting passively) when busy."""
from __future__ import annotations

import pytest

from llmlab import threads


def test_idle_machine_uses_every_core_and_spins():
    c = threads.decide(4, 0.1, "test")
    assert (c.threads, c.wait_policy) == (4, "active") and "idle" in c.reason


def test_one_busy_core_of_two_leaves_one_thread():
    c = threads.decide(2, 1.0, "test")
    assert c.threads == 1 and "1.0 busy" in c.reason


def test_busy_cores_of_many_leave_the_rest_waiting_passively():
    c = threads.decide(8, 3.2, "test")
    assert (c.threads, c.wait_policy) == (5, "passive")


def test_a_saturated_machine_still_gets_one_thread():
    assert threads.decide(2, 7.5, "test").threads == 1


def test_configured_threads_win(monkeypatch):
    monkeypatch.setattr(threads, "choose", lambda: pytest.fail("no sampling when threads are configured"))
    n, why = threads.resolve(3)
    assert n == 3 and "configured" in why


def test_the_real_sample_gives_a_usable_choice(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # a policy already set is never changed
    threads.choose.cache_clear()
    try:
        c = threads.choose()
        assert 1 <= c.threads <= threads.usable_cores() and c.busy_cores >= 0 and c.reason
        assert threads.choose() is c  # chosen once per process
    finally:
        threads.choose.cache_clear()
    import os
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_in_fresh_thread_returns_the_result_and_raises_in_the_caller():
    import threading

    main = threading.get_ident()
    assert threads.in_fresh_thread(lambda a, b=0: (a + b, threading.get_ident() != main), 2, b=3) == (5, True)
    with pytest.raises(KeyError, match="nope"):
        threads.in_fresh_thread(lambda: {}["nope"])


def test_run_niced_lowers_only_its_own_thread_and_returns_or_raises():
    import os
    import threading

    from llmlab.jobs import run_niced

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = run_niced(lambda: (threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    assert seen[0] != threading.get_native_id() and seen[1] == min(19, mine + 10)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the caller keeps its priority
    with pytest.raises(ValueError, match="bad"):
        run_niced(lambda: (_ for _ in ()).throw(ValueError("bad")))
