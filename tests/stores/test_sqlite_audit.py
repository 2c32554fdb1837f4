"""SqliteStore's audit trail (who and why on every change) and point-in-time revert."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiosqlite
import pytest

from garrison.edn import Keyword
from garrison.exceptions import StoreError
from garrison.stores import MISSING, SqliteStore, acting_as
from garrison.stores._schema import MIGRATIONS, ensure_schema

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "audit.db") as opened:
        yield opened


async def test_every_change_names_its_actor_and_reason(store: SqliteStore) -> None:
    await store.put("user/1", {"v": 1})
    with acting_as("user:42", reason="gdpr request"):
        await store.put_many([("user/1", {"v": 2}), ("user/2", 2)])
        with acting_as("ops"):  # the innermost block wins
            await store.delete("user/2")
        await store.clear("user/")
    history = await store.history("user/1")
    assert [(c.actor, c.reason) for c in history] == [
        ("app", None),
        ("user:42", "gdpr request"),
        ("user:42", "gdpr request"),
    ]
    assert [(c.op, c.actor, c.reason) for c in await store.history("user/2")] == [
        ("put", "user:42", "gdpr request"),
        ("delete", "ops", None),
    ]


async def test_changes_narrow_by_time_prefix_and_actor(store: SqliteStore) -> None:
    with acting_as("ann"):
        await store.put("user/1", 1)
        await store.put("order/1", 1)
    middle = (await store.history("order/1"))[-1].at
    with acting_as("bob"):
        await store.put("user/2", 2)
        await store.put("order/2", 2)
    every = await store.changes()
    assert [c.key for c in every] == ["user/1", "order/1", "user/2", "order/2"]
    assert [c.key for c in await store.changes(prefix="user/")] == ["user/1", "user/2"]
    assert [c.key for c in await store.changes(actor="bob")] == ["user/2", "order/2"]
    assert [c.key for c in await store.changes(middle, prefix="order/")] == ["order/2"]
    assert [c.key for c in await store.changes(after_seq=every[1].seq, limit=1)] == ["user/2"]


async def test_an_event_is_a_commit_of_its_own_with_its_actor(store: SqliteStore) -> None:
    with acting_as("ops", reason="maintenance"):
        await store.record_event("restore backup.db")
        await store.set_meta_many({"x": 1}, event="mode a -> b")
    events = await store.events()
    assert [(e.event, e.actor, e.reason) for e in events] == [
        ("restore backup.db", "ops", "maintenance"),
        ("mode a -> b", "ops", "maintenance"),
    ]
    assert await store.events(events[0].at) == events[1:]
    assert await store.changes() == []  # an event changes no key


async def test_an_empty_actor_is_refused() -> None:
    with pytest.raises(StoreError, match="non-empty"), acting_as("  "):
        pass


async def test_history_written_before_the_upgrade_has_no_actor(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await ensure_schema(conn, str(path), MIGRATIONS[:2])
        await conn.execute(
            "INSERT INTO entries VALUES ('a/1', 'a', 'a', '1', 5, 5, 1)"
        )  # the v2 trigger records it without an actor
    async with SqliteStore(path) as store:
        await store.put("a/1", 2)
        assert [(c.value, c.actor) for c in await store.history("a/1")] == [(1, None), (2, "app")]


async def test_revert_writes_back_the_values_of_a_moment(store: SqliteStore) -> None:
    await store.put_many([("doc/a", {"v": 1}), ("doc/b", Keyword("x")), ("other/z", 0)])
    await store.delete("doc/gone")  # never existed: nothing to bring back
    await store.put("doc/c", "deleted later")
    moment = (await store.history("doc/c"))[-1].at
    await store.put("doc/a", {"v": 2})
    await store.delete("doc/c")
    await store.put("doc/new", "created later")
    await store.put("other/z", 1)
    before = {c.key: await store.get(c.key, MISSING, as_of=moment) for c in await store.changes()}
    rows_before = len(await store.changes())

    plan = await store.revert_plan("doc/", moment)
    assert [(r.key, r.current, r.target) for r in plan] == [
        ("doc/a", {"v": 2}, {"v": 1}),
        ("doc/c", MISSING, "deleted later"),
        ("doc/new", "created later", MISSING),
    ]
    with acting_as("ops", reason="bad deploy"):
        await store.apply(
            [(r.key, r.target) for r in plan if r.target is not MISSING],
            [r.key for r in plan if r.target is MISSING],
            event="revert doc/",
        )
    for key, value in before.items():
        expected = value if key.startswith("doc/") else await store.get(key, MISSING)
        assert await store.get(key, MISSING) == expected, key
    assert await store.get("other/z") == 1  # outside the prefix: untouched
    assert await store.revert_plan("doc/", moment) == []
    # Nothing destroyed: three new history rows, one transaction, audited.
    changes = await store.changes()
    assert len(changes) == rows_before + 3
    assert {(c.at_micros, c.actor, c.reason) for c in changes[-3:]} == {
        (changes[-1].at_micros, "ops", "bad deploy")
    }
    (event,) = await store.events()
    assert (event.event, event.at_micros) == ("revert doc/", changes[-1].at_micros)


async def test_revert_plan_of_named_keys(store: SqliteStore) -> None:
    await store.put("a/1", 1)
    moment = (await store.history("a/1"))[-1].at
    await store.put_many([("a/1", 2), ("a/2", 2), ("a/3", 3)])
    plan = await store.revert_plan(["a/1", "a/3", "a/404"], moment)
    assert [(r.key, r.target) for r in plan] == [("a/1", 1), ("a/3", MISSING)]
