"""The query cache: a repeated query answered from memory until a commit touches what it reads.

Every write path is checked for read-your-writes through the actor: the
answer after an acknowledged write is the new one, whatever way it wrote.
"""

from __future__ import annotations

import asyncio
import enum
from typing import TYPE_CHECKING, Any

import pytest

from garrison.components.database import DatabaseLink, LoadRows, Store
from garrison.edn import Keyword, loads
from garrison.exceptions import QueryError
from garrison.stores._sqlite_bulk import encode_rows
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

SESSIONS_OF = "[:find ?s :in $ ?u :where [?s :session/user-id ?u]]"


def session(user: str) -> Any:
    return loads(f'{{:session/user-id "{user}" :session/title "t"}}')


async def sessions_of(store: Store, user: str) -> list[str]:
    return sorted(s for (s,) in await store.query(SESSIONS_OF, user))


async def test_a_query_stays_cached_until_a_commit_touches_an_attribute_it_reads(
    tmp_path: Path,
) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        await store.put_many({"session/s1": session("u1"), "session/s2": session("u2")})
        assert await sessions_of(store, "u1") == ["session/s1"]
        assert await sessions_of(store, "u1") == ["session/s1"]
        # Other attributes, other keys, values that are no entity: the answer stays.
        await store.put("project/p1", loads('{:project/owner "u1"}'))
        await store.put("counter", 7)
        assert await sessions_of(store, "u1") == ["session/s1"]
        stats = await store.statistics()
        assert (stats.query_cache_hits, stats.query_cache_misses) == (2, 1)
        assert stats.query_cache_invalidations == 0
        # Another input is another answer: cached on its own.
        assert await sessions_of(store, "u2") == ["session/s2"]
        await store.put("session/s3", session("u1"))
        assert await sessions_of(store, "u1") == ["session/s1", "session/s3"]
        stats = await store.statistics()
        assert stats.query_cache_invalidations == 2  # both answers read :session/user-id
        assert stats.query_cache_misses == 3
        assert stats.query_cache_hit_ratio == pytest.approx(2 / 5)


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "sqlite-only"},
        {"mode": "dual-write"},
        {"mode": "sqlite-first"},
        {"mode": "sqlite-only", "durability": "debounced", "flush_quiet_period": 60.0},
    ],
    ids=["sqlite-only", "dual-write", "sqlite-first", "debounced"],
)
async def test_every_write_path_is_read_back_at_once(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    async with database_runtime(tmp_path, **options) as rt:
        store = rt.get(Store)
        await store.put_many({"session/s1": session("u1"), "session/s2": session("u2")})
        moment = (await store.history("session/s2"))[-1].at
        assert await sessions_of(store, "u1") == ["session/s1"]
        # A put that drops the attribute: only the old value says the query read it.
        await store.put("session/s1", loads('{:session/title "renamed"}'))
        assert await sessions_of(store, "u1") == []
        await store.put_many({"session/s2": session("u1"), "session/s3": session("u1")})
        assert await sessions_of(store, "u1") == ["session/s2", "session/s3"]
        assert await store.delete("session/s3")
        assert await sessions_of(store, "u1") == ["session/s2"]
        await store.delete_many(["session/s2"])
        assert await sessions_of(store, "u1") == []
        await store.revert(["session/s1", "session/s2", "session/s3"], to=moment)
        assert await sessions_of(store, "u1") == ["session/s1"]
        await store.clear("session/")
        assert await sessions_of(store, "u1") == []
        items = [("session/s4", session("u1"))]
        link = DatabaseLink(rt.ref("database"), "garrison.db")
        await link.load(LoadRows(encode_rows(items, kind="session"), [v for _, v in items]))
        assert await sessions_of(store, "u1") == ["session/s4"]
        stats = await store.statistics()
        assert stats.query_cache_hits == 0  # every write above changed the answer
        assert stats.query_cache_misses == 8


async def test_a_mode_switch_forgets_every_answer(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, mode="dual-write") as rt:
        store = rt.get(Store)
        await store.put("session/s1", session("u1"))
        assert await sessions_of(store, "u1") == ["session/s1"]
        await store.set_mode("sqlite-first")
        assert await sessions_of(store, "u1") == ["session/s1"]
        stats = await store.statistics()
        assert (stats.query_cache_hits, stats.query_cache_misses) == (0, 2)


async def test_an_answer_is_never_an_object_another_caller_changed(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        await store.put("session/s1", session("u1"))
        pull = '[:find (pull ?s [*]) :where [?s :session/user-id "u1"]]'
        first = await store.query(pull)
        first[0][0][Keyword("session/user-id")] = "mallory"
        first.append(("junk",))
        assert await store.query(pull) == [(session("u1"),)]
        assert (await store.statistics()).query_cache_hits == 1


async def test_a_pull_of_an_input_entity_is_forgotten_by_any_write(tmp_path: Path) -> None:
    # It reads the entry's stored value, whatever it is: no attribute says it changed.
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        await store.put("note/n1", {"text": "a"})
        pull = "[:find (pull ?e [*]) :in $ ?e]"
        assert await store.query(pull, "note/n1") == [({"text": "a"},)]
        await store.put("other", 1)
        await store.put("note/n1", {"body": "b"})
        assert await store.query(pull, "note/n1") == [({"body": "b"},)]


async def test_the_cache_is_bounded_and_can_be_turned_off(tmp_path: Path) -> None:
    async with database_runtime(tmp_path / "small", query_cache_size=2) as rt:
        store = rt.get(Store)
        await store.put("session/s1", session("u1"))
        for user in ("u1", "u2", "u3", "u1"):
            await sessions_of(store, user)
        stats = await store.statistics()
        assert (stats.query_cache_capacity, stats.query_cache_entries) == (2, 2)
        assert (stats.query_cache_evictions, stats.query_cache_hits) == (2, 0)
    async with database_runtime(tmp_path / "off", query_cache_size=0) as rt:
        store = rt.get(Store)
        await store.put("session/s1", session("u1"))
        for _ in range(3):
            assert await sessions_of(store, "u1") == ["session/s1"]
        stats = await store.statistics()
        assert (stats.query_cache_entries, stats.query_cache_hits) == (0, 0)


async def test_what_a_rewritten_key_held_is_remembered_only_while_it_is_followed(
    tmp_path: Path,
) -> None:
    titled = loads('{:session/title "t"}')
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        assert await sessions_of(store, "u1") == []  # cached: writes now find what they replace
        await store.put("session/s1", titled)  # remembered: s1 holds :session/title
        await store.put("session/s9", session("u9"))  # forgets the answer: nothing is followed
        await store.put("session/s1", session("u1"))  # written unfollowed: s1 is not remembered
        assert await sessions_of(store, "u1") == ["session/s1"]
        # s1 holds :session/user-id now; a stale memory would say :session/title only.
        await store.put("session/s1", titled)
        assert await sessions_of(store, "u1") == []
        # A hot key rewritten while followed: what it replaces comes from memory, and counts.
        await store.put("session/s1", session("u1"))
        assert await sessions_of(store, "u1") == ["session/s1"]
        await store.put("session/s1", titled)
        assert await sessions_of(store, "u1") == []


async def test_queries_asked_at_once_are_read_together_and_answered_each(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        await store.put_many({f"session/s{i}": session(f"u{i % 5}") for i in range(20)})
        users = [f"u{i % 7}" for i in range(30)]  # repeats, and users nobody is
        asked = [sessions_of(store, user) for user in users]
        asked.append(store.query("[:find ?s :where [?s :no/such ?x"))  # not EDN: its own error
        *answers, bad = await asyncio.gather(*asked, return_exceptions=True)
        assert isinstance(bad, QueryError)
        for user, answer in zip(users, answers, strict=True):
            expected = sorted(f"session/s{i}" for i in range(20) if f"u{i % 5}" == user)
            assert answer == expected
        stats = await store.statistics()
        assert stats.query_cache_entries == 7
        assert stats.query_cache_misses == 8  # 7 users and the query that is not EDN
        assert stats.query_cache_hits == 23


async def test_an_input_of_a_subclass_is_answered_by_its_value_not_from_the_cache(
    tmp_path: Path,
) -> None:
    class Level(enum.IntEnum):
        ONE = 1

    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        await store.put("item/a", loads("{:item/level 1}"))
        query = "[:find ?e :in $ ?l :where [?e :item/level ?l]]"
        assert await store.query(query, 1) == [("item/a",)]
        # Bound by its value (Clojure's =: it is the integer 1), answered anew.
        assert await store.query(query, Level.ONE) == [("item/a",)]
        stats = await store.statistics()
        assert (stats.query_cache_hits, stats.query_cache_entries) == (0, 1)
