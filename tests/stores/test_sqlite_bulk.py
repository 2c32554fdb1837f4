"""Bulk loading (encode_rows + put_rows) makes exactly the database put_many makes."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import pytest

from garrison.edn import BigInt, Keyword, Tagged, Vector
from garrison.exceptions import EdnEncodeError, StoreError
from garrison.stores import SqliteStore
from garrison.stores._keys import key_namespace, key_text
from garrison.stores._sqlite_bulk import encode_rows, put_new_rows, put_rows, rows_json
from garrison.stores._values import encode_value

if TYPE_CHECKING:
    from pathlib import Path

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

K = Keyword
_ITEMS: list[tuple[Any, Any]] = [
    ("session/abc", {K("user"): K("user/u1"), K("tags"): frozenset({K("a"), K("b")})}),
    ("presence/s-1", {K("last-seen"): dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)}),
    ("project/p1", {"name": "Zürich 😀", "ratio": Fraction(22, 7), "big": BigInt(12**20)}),
    ("learning/r1", (K("a"), Vector([1, 2.5, None]), Tagged("my/tag", [1]))),
    ("embed-token/5fe3", [0.25, -1.0, float("inf")]),
    ("plain", {"#k": "a marker lookalike"}),
    # Stores take key texts; the database's messages normalise keys once.
    (key_text(K("cache/k1")), None),
    (key_text(uuid.UUID(int=7)), "a non-keyword key"),
]


async def _dump(path: Path) -> dict[str, Any]:
    """Everything the two ways of writing must agree on (times relative to the commits)."""
    async with SqliteStore(path) as store:
        conn = store.connection
        commits = [
            tuple(r)
            for r in await conn.execute_fetchall("SELECT at, first_seq FROM commits ORDER BY at")
        ]
        order = {at: i for i, (at, _) in enumerate(commits)}
        entries = await conn.execute_fetchall(
            "SELECT key, namespace, kind, value, created_at, updated_at, version "
            "FROM entries ORDER BY key"
        )
        history = await conn.execute_fetchall(
            "SELECT seq, key, op, value, version, at FROM history ORDER BY seq"
        )
        return {
            "commits": [first for _, first in commits],
            "entries": [(*row[:4], order[row[4]], order[row[5]], row[6]) for row in entries],
            "history": [(*row[:5], order[row[5]]) for row in history],
        }


async def test_put_rows_writes_what_put_many_writes(tmp_path: Path) -> None:
    changed = [(key, ["changed", value]) for key, value in _ITEMS[:3]]
    async with SqliteStore(tmp_path / "put_many.db") as store:
        await store.put_many(_ITEMS, kind="session")
        await store.put_many(changed, kind="project")
    async with SqliteStore(tmp_path / "bulk.db") as store:
        await put_rows(store, encode_rows(_ITEMS, kind="session"))
        await put_rows(store, encode_rows(changed, kind="project"))
        assert await store.get("project/p1") == ["changed", _ITEMS[2][1]]
        assert [c.version for c in await store.history("session/abc")] == [1, 2]

    expected = await _dump(tmp_path / "put_many.db")
    assert await _dump(tmp_path / "bulk.db") == expected
    assert len(expected["commits"]) == 2
    assert len(expected["history"]) == len(_ITEMS) + len(changed)


async def test_a_setting_commits_with_the_rows_or_not_at_all(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "garrison.db") as store:
        await put_rows(
            store, encode_rows(_ITEMS[:2], kind="session"), meta=("progress", {"done": 2})
        )
        assert await store.get_meta("progress") == {"done": 2}
        assert await store.count() == 2
        assert len(await store.changed_since(0)) == 2  # one commit, the meta not in history

        # A row SQLite refuses (no value: the column is NOT NULL) rolls the
        # setting back with the rows before it.
        bad = [
            ("session/zz", None, "session", '"x"', None),
            ("session/zy", None, "session", None, None),
        ]
        with pytest.raises(StoreError):
            await put_rows(store, bad, meta=("progress", {"done": 4}))  # type: ignore[arg-type]
        assert await store.get_meta("progress") == {"done": 2}
        assert await store.count() == 2

        # With no rows, the setting is stored alone.
        await put_rows(store, [], meta=("progress", {"done": 2, "finished": True}))
        assert await store.get_meta("progress") == {"done": 2, "finished": True}


@pytest.mark.parametrize(("key", "value"), _ITEMS)
def test_encode_rows_stores_the_text_put_many_stores(key: Any, value: Any) -> None:
    ((text, namespace, kind, stored),) = encode_rows([(key, value)], kind="cache")
    assert text == key_text(key)
    assert namespace == key_namespace(text)
    assert kind == "cache"
    assert stored == encode_value(value)


async def test_a_value_with_no_stored_form_fails_before_anything_is_written(
    tmp_path: Path,
) -> None:
    with pytest.raises(EdnEncodeError, match="no EDN form"):
        encode_rows([("session/a", 1), ("session/b", object())], kind="session")
    async with SqliteStore(tmp_path / "garrison.db") as store:
        await put_rows(store, [])
        assert await store.count() == 0
        assert await store.changed_since(0) == []


async def test_put_rows_makes_the_put_many_span(
    tmp_path: Path, span_exporter: InMemorySpanExporter
) -> None:
    async with SqliteStore(tmp_path / "garrison.db") as store:
        await put_rows(store, encode_rows(_ITEMS[:2], kind="session"))
        assert await store.get("session/abc") == _ITEMS[0][1]
    spans = [s for s in span_exporter.get_finished_spans() if s.name.startswith("put_many")]
    assert len(spans) == 1
    assert spans[0].attributes is not None
    assert spans[0].attributes.get("db.operation.batch.size") == 2


async def test_each_bulk_write_starts_a_background_checkpoint(tmp_path: Path) -> None:
    # A bulk load's transactions are few and big: the log is copied into the
    # database file after each of them (by the store's second connection),
    # not only after checkpoint_every transactions or inside a later commit.
    items = [(f"session/k{i:04}", {"pad": "x" * 500, "i": i}) for i in range(200)]
    rows = encode_rows(items, kind="session")
    async with SqliteStore(tmp_path / "garrison.db") as store:
        checkpointer = store._checkpointer
        assert checkpointer is not None
        assert checkpointer.every == 256
        await put_rows(store, rows[:100], meta=("progress", {"done": 100}))
        await checkpointer.wait_idle()
        assert checkpointer.checkpoints == 1
        assert checkpointer.copied_pages == checkpointer.log_pages > 0  # all of the log
        await put_rows(store, rows[100:])
        await checkpointer.wait_idle()
        assert checkpointer.checkpoints == 2
        assert checkpointer.copied_pages == checkpointer.log_pages
        assert checkpointer.failures == 0
        assert await store.count("session/") == 200
    async with SqliteStore(tmp_path / "off.db", checkpoint_every=0) as store:
        await put_rows(store, rows)  # checkpoints left to SQLite, as the option says
        assert store._checkpointer is None
        assert await store.count("session/") == 200


# Texts the one-statement write reads back from JSON (escapes, every control
# character, beyond the BMP) and those it leaves to put_many's statement: a
# key holding a NUL (SQLite's JSON reader would end it there), a value text
# holding an escaped NUL (only seems to), a key orjson refuses (a lone
# surrogate: the same error as put_many).
_AWKWARD: list[tuple[Any, Any]] = [
    ("text/controls", "".join(chr(i) for i in range(1, 32)) + '"\\/\x7f\u2028'),
    ("text/wide", "😀 \U0010ffff \ufeff 日本語"),
    ('text/"quoted\\key\n', 1),
]


@pytest.mark.parametrize(
    "items",
    [_AWKWARD, [*_AWKWARD, ("text/nul", "a\x00b")], [*_AWKWARD, ("text/nul\x00key", 2)]],
    ids=["json", "escaped-nul", "nul"],
)
async def test_awkward_texts_are_stored_as_put_many_stores_them(
    tmp_path: Path, items: list[tuple[Any, Any]]
) -> None:
    async with SqliteStore(tmp_path / "put_many.db") as store:
        await store.put_many(items, kind="text")
    async with SqliteStore(tmp_path / "bulk.db") as store:
        await put_rows(store, encode_rows(items, kind="text"))
        for key, value in items:
            assert await store.get(key) == value
    assert await _dump(tmp_path / "bulk.db") == await _dump(tmp_path / "put_many.db")


async def test_a_key_orjson_refuses_fails_as_in_put_many(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "garrison.db") as store:
        with pytest.raises(UnicodeEncodeError):
            await store.put_many([("k/\ud800", 1)])
        with pytest.raises(UnicodeEncodeError):
            await put_rows(store, encode_rows([("k/\ud800", 1)], kind="k"))
        assert await store.count() == 0


async def _commits(store: SqliteStore) -> int:
    rows = await store.connection.execute_fetchall("SELECT count(*) FROM commits")
    return int(next(iter(rows))[0])


async def test_put_new_rows_writes_only_when_no_key_exists(tmp_path: Path) -> None:
    rows = encode_rows(_ITEMS, kind="session")
    async with SqliteStore(tmp_path / "put_rows.db") as store:
        await put_rows(store, rows, meta=("progress", {"done": 8}))
    async with SqliteStore(tmp_path / "new.db") as store:
        writing: list[threading.Thread] = []
        assert (
            await put_new_rows(
                store,
                rows,
                meta=("progress", {"done": 8}),
                writing=lambda: writing.append(threading.current_thread()),
            )
            is None
        )
        # Told on the connection's thread, as the rows went to SQLite.
        assert len(writing) == 1
        assert writing[0] is not threading.current_thread()
        assert await store.get_meta("progress") == {"done": 8}
        await store.put("other/x", 1)
        commits = await _commits(store)

        # Two keys exist (one changed since): nothing is written, not even the
        # setting or a commit record, and their stored texts and versions come back.
        await store.put("session/abc", "changed")
        again = [*encode_rows([("new/1", 1)], kind="new"), rows[0], rows[2]]
        found = await put_new_rows(
            store,
            again,
            meta=("progress", {"done": 11}),
            writing=lambda: writing.append(threading.current_thread()),
        )
        assert len(writing) == 1  # nothing went to SQLite
        assert found == (
            {"session/abc": encode_value("changed"), "project/p1": rows[2][3]},
            {"session/abc": 2, "project/p1": 1},
        )
        assert await store.get("new/1") is None
        assert await store.get_meta("progress") == {"done": 8}
        assert await _commits(store) == commits + 1  # the put of "changed" only
    dump = await _dump(tmp_path / "new.db")
    expected = await _dump(tmp_path / "put_rows.db")
    assert dump["history"][: len(_ITEMS)] == expected["history"]


async def test_put_new_rows_with_the_json_made_ahead_writes_what_put_many_writes(
    tmp_path: Path,
) -> None:
    items = [*_AWKWARD, *_ITEMS]
    rows = encode_rows(items, kind="text")
    with_nul = encode_rows([("text/nul", "a\x00b")], kind="text")
    assert rows_json(with_nul) is None  # SQLite's JSON reader cannot carry it
    async with SqliteStore(tmp_path / "put_many.db") as store:
        await store.put_many(items, kind="text")
        await store.put_many([("text/nul", "a\x00b")], kind="text")
    async with SqliteStore(tmp_path / "bulk.db") as store:
        assert await put_new_rows(store, rows, payload=rows_json(rows)) is None
        assert await put_new_rows(store, with_nul, payload=rows_json(with_nul)) is None
    assert await _dump(tmp_path / "bulk.db") == await _dump(tmp_path / "put_many.db")
