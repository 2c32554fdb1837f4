"""store.query through the database actor: every mode that writes SQLite answers; edn-only says
which mode to switch to."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from garrison.components.database import Query, Store
from garrison.edn import loads
from garrison.exceptions import ConfigError, QueryError, StoreError
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

SESSIONS = {
    "session/s1": loads('{:session/user-id "u1"}'),
    "session/s2": loads('{:session/user-id "u2"}'),
    "presence/p1": loads("{:presence/session :session/s1}"),
}
# [components.database.schema]: the two attributes WHO_IS_PRESENT reads, indexed.
SCHEMA = {
    "session": {":session/user-id": {"indexed": True}},
    "presence": {":presence/session": {"indexed": True}},
}
WHO_IS_PRESENT = "[:find ?p :in $ ?u :where [?s :session/user-id ?u] [?p :presence/session ?s]]"


@pytest.mark.parametrize("mode", ["dual-write", "sqlite-first", "sqlite-only"])
async def test_a_query_through_the_actor_in_every_database_mode(tmp_path: Path, mode: str) -> None:
    async with database_runtime(tmp_path, mode=mode, schema=SCHEMA) as rt:
        store = rt.get(Store)
        await store.put_many(SESSIONS)
        assert await store.query(WHO_IS_PRESENT, "u1") == [("presence/p1",)]
        assert await rt.ref("database").ask(Query(WHO_IS_PRESENT, ("u2",))) == []
        plan = await store.query(WHO_IS_PRESENT, "u1", explain=True)
        assert plan["scans"] is False  # the configured schema reached the store
        with pytest.raises(QueryError) as caught:
            await store.query("[:find ?x :where [?s :session/user-id ?u]]")
        assert caught.value.clause == ":find"


async def test_edn_only_names_the_mode_to_switch_to(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, mode="edn-only") as rt:
        store = rt.get(Store)
        await store.put_many(SESSIONS)
        with pytest.raises(StoreError, match="edn-only mode: switch to dual-write"):
            await store.query(WHO_IS_PRESENT, "u1")


async def test_a_query_sees_acknowledged_writes_not_yet_committed(tmp_path: Path) -> None:
    # durability = "debounced": the query commits the pending writes first, in order.
    long = {"flush_max_delay": 60.0, "flush_quiet_period": 60.0}
    async with database_runtime(tmp_path, durability="debounced", **long) as rt:
        store = rt.get(Store)
        await store.put_many(SESSIONS)
        await store.put("session/s2", loads('{:session/user-id "u1"}'))
        assert (await store.statistics()).uncommitted_writes == 4  # one per key written
        assert sorted(await store.query('[:find ?s :where [?s :session/user-id "u1"]]')) == [
            ("session/s1",),
            ("session/s2",),
        ]
        assert (await store.statistics()).uncommitted_writes == 0


async def test_a_bad_schema_rule_stops_the_start_naming_kind_and_attribute(tmp_path: Path) -> None:
    bad = {"session": {":session/user-id": {"indexed": True, "type": "text"}}}
    with pytest.raises(
        ConfigError, match=re.escape("schema.session.':session/user-id': unknown type 'text'")
    ):
        async with database_runtime(tmp_path, schema=bad):
            pass
