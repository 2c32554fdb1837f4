"""Run a call in a worker thread and measure how long the main thread was kept waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def longest_main_thread_wait(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``call()`` in a thread while this thread spins; return (result, longest wait, call time).

    The longest wait is the longest stretch during the call in which this
    thread did not run, up to the end of the call: if it never ran during the
    call, that is all of it. A C call that keeps the GIL throughout gives a
    wait of about its whole duration; one that lets other threads in now and
    then gives a wait of a few switch intervals.
    """
    result: list[Any] = []
    times: list[float] = []

    def worker() -> None:
        began = time.perf_counter()
        result.append(call())
        times.extend((began, time.perf_counter()))

    thread = threading.Thread(target=worker)
    longest, last = 0.0, time.perf_counter()
    thread.start()
    while thread.is_alive():
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    thread.join()
    began, ended = times
    return result[0], max(longest, ended - last), ended - began
