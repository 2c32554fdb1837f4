"""The audit trail and revert through the database component: every mode, real files."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from garrison import open_runtime
from garrison.components.database import Put, Store
from garrison.components.migrator import migrate
from garrison.edn import Keyword
from garrison.exceptions import StoreError
from garrison.runtime import Component, handler
from garrison.stores import MISSING, Audit, SqliteStore, acting_as, load_file
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("durability", ["commit", "debounced"])
async def test_concurrent_writers_keep_their_own_actor(tmp_path: Path, durability: str) -> None:
    async with database_runtime(tmp_path, durability=durability) as rt:
        store = rt.get(Store)

        async def writer(actor: str, index: int) -> None:
            with store.acting_as(actor, reason=f"job {index}"):
                await store.put(f"k/{index}", index)
                await store.delete_many([f"gone/{index}"])
                await store.put_many({f"k/{index}": index + 1})

        # One mailbox drain holds writes of many actors: no transaction mixes them.
        await asyncio.gather(*(writer(f"user:{i % 3}", i) for i in range(24)))
        await store.put("k/plain", 0)  # outside any block: the default actor
        changes = await store.changes(prefix="k/")
    assert len(changes) == 49
    for change in changes:
        if change.key == "k/plain":
            assert (change.actor, change.reason) == ("app", None)
        else:
            index = int(change.key.split("/")[1])
            assert (change.actor, change.reason) == (f"user:{index % 3}", f"job {index}")


async def test_the_audit_travels_in_the_message(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        with acting_as("batch-job", reason="nightly"):
            message = Put("a/1", 1)  # the sender's context, taken when it is built
        assert message.audit == Audit("batch-job", "nightly")
        await rt.ref("database").ask(message)  # sent from outside the block
        await rt.ref("database").ask(Put("a/1", 2, audit=Audit("explicit")))
        history = await rt.get(Store).history("a/1")
    assert [(c.actor, c.reason) for c in history] == [("batch-job", "nightly"), ("explicit", None)]


async def test_mode_switches_restores_and_clears_are_in_the_trail(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, mode="dual-write") as rt:
        store = rt.get(Store)
        await store.put("a/1", 1)
        await store.backup(tmp_path / "b.db")
        with store.acting_as("ops", reason="cutover"):
            # A restore brings back the backup's trail, then records itself in it.
            await store.restore(tmp_path / "b.db")
            await store.set_mode("sqlite-only", force=True, reason="validated")
            await store.clear("a/")
        events = await store.events()
        changes = await store.changes(actor="ops")
    assert [(e.event, e.actor, e.reason) for e in events] == [
        (f"restore {tmp_path / 'b.db'}", "ops", "cutover"),
        ("mode dual-write -> sqlite-only (forced)", "ops", "validated"),
    ]
    assert [(c.key, c.op, c.reason) for c in changes] == [("a/1", "delete", "cutover")]


@pytest.mark.parametrize("mode", ["dual-write", "sqlite-first", "sqlite-only"])
async def test_revert_matches_the_as_of_reads_in_every_mode(tmp_path: Path, mode: str) -> None:
    async with database_runtime(tmp_path, mode=mode, cache_size=100) as rt:
        store = rt.get(Store)
        await store.put_many({"doc/a": {"v": 1}, "doc/b": Keyword("x"), "doc/c": 3})
        moment = (await store.history("doc/c"))[-1].at
        await store.put("doc/a", {"v": 2})
        await store.delete("doc/b")
        await store.put("doc/new", 4)
        assert await store.get("doc/a") == {"v": 2}  # in the read cache now
        keys = ["doc/a", "doc/b", "doc/c", "doc/new"]
        then = {k: await store.get_as_of(k, moment, MISSING) for k in keys}
        dry = await store.revert("doc/", to=moment, dry_run=True)
        assert [r.key for r in dry] == ["doc/a", "doc/b", "doc/new"]
        assert await store.get("doc/new") == 4  # a dry run writes nothing
        async with store.watch("doc/") as changes:
            with store.acting_as("ops"):
                plan = await store.revert("doc/", to=moment, reason="bad import")
            seen = [await anext(changes) for _ in plan]
        assert plan == dry
        assert {c.key: (c.op, c.value) for c in seen} == {
            "doc/a": ("put", {"v": 1}),
            "doc/b": ("put", Keyword("x")),
            "doc/new": ("delete", MISSING),
        }
        assert {k: await store.get(k, MISSING) for k in keys} == then
        (event,) = await store.events()
        assert (event.actor, event.reason) == ("ops", "bad import")
        assert event.event.startswith("revert prefix 'doc/' to ")
        await store.flush()
    if mode != "sqlite-only":  # the EDN file holds the reverted state too
        assert load_file(tmp_path / "memory.edn") == {
            k: v for k, v in then.items() if v is not MISSING
        }


async def test_revert_is_refused_in_edn_only_mode_naming_the_way_out(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, mode="edn-only") as rt:
        store = rt.get(Store)
        await store.put("a/1", 1)
        with pytest.raises(StoreError, match="edn-only mode; switch to dual-write first"):
            await store.revert("a/", to=0)


async def test_the_migrator_writes_as_migrator(tmp_path: Path) -> None:
    source = tmp_path / "memory.edn"
    source.write_text("{:user/a 1 :user/b #{:x}}", encoding="utf-8")
    async with SqliteStore(tmp_path / "g.db") as store:
        with acting_as("cli:ann"):
            await migrate(store, source)
        changes = await store.changes()
    assert [(c.key, c.actor, c.reason) for c in changes] == [
        ("user/a", "migrator", "run by cli:ann"),
        ("user/b", "migrator", "run by cli:ann"),
    ]


@dataclass(frozen=True)
class Record:
    key: str


class Recorder(Component):
    """An application component that writes on its caller's behalf."""

    name = "recorder"
    depends_on = ("database",)

    @handler
    async def record(self, message: Record) -> None:
        await self.runtime.get(Store).put(message.key, "recorded")


async def test_the_actor_travels_through_nested_asks_and_tells(tmp_path: Path) -> None:
    """The caller acting as user:42 asks a component, which writes: the write is user:42's."""
    config = {
        "runtime": {"data_dir": str(tmp_path)},
        "components": {"database": {}},
    }
    async with open_runtime(config, components=[Recorder], environ={}) as rt:
        store = rt.get(Store)
        recorder = rt.ref("recorder")
        with store.acting_as("user:42", reason="gdpr request"):
            await recorder.ask(Record("by/ask"))
            await recorder.tell(Record("by/tell"))
        await recorder.ask(Record("by/app"))  # outside the block: the default actor
        history = {k: await store.history(k) for k in ("by/ask", "by/tell", "by/app")}
    assert [(c.actor, c.reason) for c in history["by/ask"]] == [("user:42", "gdpr request")]
    assert [(c.actor, c.reason) for c in history["by/tell"]] == [("user:42", "gdpr request")]
    assert [(c.actor, c.reason) for c in history["by/app"]] == [("app", None)]
