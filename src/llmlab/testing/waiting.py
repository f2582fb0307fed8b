"""Polling helper for tests of background work (jobs, the decode thread, servers)."""
from __future__ import annotations

import time
from typing import Callable


def wait_until(cond: Callable[[], object], timeout: float = 30.0, interval: float = 0.02) -> bool:
    """Poll ``cond`` until it is truthy or ``timeout`` seconds pass; its last answer, as a bool."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return bool(cond())
