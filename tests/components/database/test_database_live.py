"""Live queries (Store.subscribe): real writers, a real restart, the final state checked."""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING

import pytest

from garrison.components.database import Store
from garrison.edn import Keyword, Symbol, equal, loads
from garrison.exceptions import QueryError
from tests.components.database.conftest import database_runtime
from tests.components.database.test_database_faults import _running_again, _sqlite_of

if TYPE_CHECKING:
    from pathlib import Path

    from garrison import Runtime


async def test_the_current_result_at_once_then_each_different_one(runtime: Runtime) -> None:
    store = runtime.get(Store)
    await store.put("todo/1", {"done": False})
    live = store.subscribe("todo/")
    assert await anext(live) == [("todo/1", {"done": False})]
    await store.put("other/1", 1)  # outside the prefix: no new result
    await store.put("todo/1", {"done": False})  # the same result: not yielded again
    await store.put("todo/2", {"done": True})
    assert await anext(live) == [("todo/1", {"done": False}), ("todo/2", {"done": True})]
    await store.delete("todo/1")
    assert await anext(live) == [("todo/2", {"done": True})]
    live.close()


async def test_a_find_subscription_follows_its_matches(runtime: Runtime) -> None:
    store = runtime.get(Store)
    live = store.subscribe("task/", find={"path": "$.owner", "eq": 42})
    assert await anext(live) == []
    await store.put("task/1", {"owner": 7})  # changes nothing the query returns
    await store.put("task/2", {"owner": 42})
    assert await anext(live) == [("task/2", {"owner": 42})]
    live.close()


async def test_a_subscriber_fed_by_64_writers_ends_at_the_final_state(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        live = store.subscribe("n/")
        results = [await anext(live)]

        async def writer(index: int) -> None:
            for round_ in range(5):
                await store.put(f"n/{index}", round_)

        writers = asyncio.gather(*(writer(i) for i in range(64)))
        final = [(f"n/{i}", 4) for i in range(64)]
        final.sort()
        while results[-1] != final:
            results.append(await anext(live))
        await writers
        assert results[-1] == await store.scan("n/")
        # Coalesced (far fewer results than the 320 commits), never twice the same.
        assert len(results) < 320
        assert all(not equal(a, b) for a, b in itertools.pairwise(results))
        live.close()


async def test_a_slow_consumer_gets_the_latest_result_and_never_slows_writers(
    tmp_path: Path,
) -> None:
    async with database_runtime(tmp_path, watch_buffer=8) as rt:
        store = rt.get(Store)
        live = store.subscribe("s/")
        assert await anext(live) == []
        # Nobody reads while 100 writes commit: none of them waits for the consumer.
        async with asyncio.timeout(10):
            for i in range(100):
                await store.put("s/counter", i)
        assert await anext(live) == [("s/counter", 99)]
        assert live.resyncs == 1  # the feed overflowed; it read the current state anew
        live.close()


async def test_a_live_query_resyncs_across_a_restart_and_ends_with_the_runtime(
    tmp_path: Path,
) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        await store.put("r/1", 1)
        live = store.subscribe("r/")
        assert await anext(live) == [("r/1", 1)]
        await _sqlite_of(rt).connection.close()  # the actor crashes at its next use
        await asyncio.gather(store.put("r/2", 2), return_exceptions=True)
        await _running_again(rt, 1)
        await store.put("r/3", 3)
        result = await anext(live)
        assert result in ([("r/1", 1), ("r/3", 3)], [("r/1", 1), ("r/2", 2), ("r/3", 3)])
        assert live.resyncs == 1
        ended = asyncio.ensure_future(anext(live, None))
    assert await ended is None  # the runtime stopped: the live query ended


async def test_the_feed_delivers_a_change_to_every_watcher_whose_prefix_it_has(
    runtime: Runtime,
) -> None:
    store = runtime.get(Store)
    watches = {p: await store.watch(p).start() for p in ("", "s/", "s/1", "s/12", "s/2", "t/")}
    await store.put_many({"s/12": 1, "t/x": 2})
    await store.put("s/x", 3)  # the last change: every watcher has it or not, in order
    got = {
        p: [c.key for _ in range(w.pending) if (c := await anext(w))] for p, w in watches.items()
    }
    assert got == {
        "": ["s/12", "t/x", "s/x"],
        "s/": ["s/12", "s/x"],
        "s/1": ["s/12"],
        "s/12": ["s/12"],
        "s/2": [],
        "t/": ["t/x"],
    }


PRESENT = "[:find ?p :in $ ?u :where [?s :session/user-id ?u] [?p :presence/session ?s]]"


async def test_a_datalog_subscription_runs_again_only_for_attributes_it_reads(
    runtime: Runtime,
) -> None:
    store = runtime.get(Store)
    await store.put("session/s1", loads('{:session/user-id "u1"}'))
    live = store.subscribe(PRESENT, "u1")
    assert await anext(live) == []
    base = await store.statistics()
    assert base.attribute_watches == 1
    # Acknowledged writes of other attributes (and a value that is no entity): not woken.
    await store.put("project/p1", loads('{:project/owner "u1"}'))
    await store.put("counter", 1)
    assert (await store.statistics()).attribute_wakeups == base.attribute_wakeups
    await store.put("presence/p1", loads("{:presence/session :session/s1}"))
    assert (await store.statistics()).attribute_wakeups == base.attribute_wakeups + 1
    assert await anext(live) == [("presence/p1",)]
    assert live.evaluations == 2  # the first result and the one after the touching write
    # Python data, and the query cache shared by two subscriptions of one query.
    data = [
        Keyword("find"),
        Symbol("?p"),
        Keyword("where"),
        [Symbol("?p"), Keyword("presence/session"), Symbol("_")],
    ]
    other = store.subscribe(data)
    assert await anext(other) == [("presence/p1",)]
    await store.delete("presence/p1")
    assert await anext(live) == []
    assert await anext(other) == []
    live.close()
    other.close()


async def test_a_find_subscription_wakes_for_its_top_attribute_under_its_prefix(
    runtime: Runtime,
) -> None:
    store = runtime.get(Store)
    live = store.subscribe("task/", find={"path": "$.owner", "eq": 42})
    assert await anext(live) == []
    base = (await store.statistics()).attribute_wakeups
    await store.put("task/1", {"title": "x"})  # not its attribute
    await store.put("other/1", {"owner": 42})  # not its prefix
    assert (await store.statistics()).attribute_wakeups == base
    await store.put("task/1", {"owner": 42})
    assert await anext(live) == [("task/1", {"owner": 42})]
    assert live.evaluations == 2
    live.close()


async def test_a_datalog_subscription_resyncs_across_a_restart(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        live = store.subscribe('[:find ?s :where [?s :session/user-id "u1"]]')
        assert await anext(live) == []
        await _sqlite_of(rt).connection.close()  # the actor crashes at its next use
        await asyncio.gather(store.put("x/1", 1), return_exceptions=True)
        await _running_again(rt, 1)
        await store.put("session/s1", loads('{:session/user-id "u1"}'))
        assert await anext(live) == [("session/s1",)]
        assert live.resyncs == 1
        ended = asyncio.ensure_future(anext(live, None))
    assert await ended is None


async def test_a_malformed_datalog_subscription_fails_at_once(runtime: Runtime) -> None:
    store = runtime.get(Store)
    with pytest.raises(QueryError) as caught:
        store.subscribe("[:find ?x :where [?s :session/user-id ?u]]")
    assert caught.value.clause == ":find"
    with pytest.raises(TypeError, match="find= narrows a key prefix"):
        store.subscribe(PRESENT, "u1", find={"path": "$.a"})


async def test_a_datalog_subscriber_fed_by_64_writers_ends_at_the_final_answer(
    tmp_path: Path,
) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        query = "[:find ?n ?round :where [?n :n/round ?round]]"
        live = store.subscribe(query)
        answers = [await anext(live)]

        async def writer(index: int) -> None:
            for round_ in range(5):
                await store.put(f"n/{index}", {Keyword("n/round"): round_})

        writers = asyncio.gather(*(writer(i) for i in range(64)))
        final = sorted((f"n/{i}", 4) for i in range(64))
        while sorted(answers[-1]) != final:
            answers.append(await anext(live))
        await writers
        assert sorted(await store.query(query)) == final
        assert len(answers) < 320
        assert all(sorted(a) != sorted(b) for a, b in itertools.pairwise(answers))
        live.close()
