"""loads pauses the garbage collector for big texts; concurrent calls leave it as they found it."""

from __future__ import annotations

import gc
import threading

from garrison.edn import dumps, loads

BIG = dumps({f"k{i}": [i, str(i), {"n": i}] for i in range(20_000)})


def test_concurrent_loads_in_threads_restore_the_collector() -> None:
    assert len(BIG) > 1 << 16
    assert gc.isenabled()
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def parse() -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(3):
                assert len(loads(BIG)) == 20_000
        except BaseException as exc:  # reported to the main thread below
            failures.append(exc)

    threads = [threading.Thread(target=parse) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures
    assert gc.isenabled(), "a concurrent loads left the garbage collector disabled"


def test_an_application_that_disabled_the_collector_keeps_it_disabled() -> None:
    gc.disable()
    try:
        loads(BIG)
        assert not gc.isenabled()
    finally:
        gc.enable()
