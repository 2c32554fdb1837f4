"""Values Python's ``==`` merges survive a migration, and ``garrison validate`` sees them change.

A memory.edn holding sets and map keys like ``#{nil false 0.5M}``,
``#{0 false 0.51}`` and ``{0 :a false :b}`` is migrated with the real
command; then one side is changed by hand (the SQLite row with sqlite3, or
the EDN file with an editor's worth of text replacement), and ``validate``
must report each change as a different value, and agree again once it is
undone.
"""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.cli import main
from garrison.components.migrator._diff import same_as_stored
from garrison.edn import EdnMap, EdnSet, Keyword, dumps, loads
from garrison.stores import SqliteStore
from garrison.stores._values import encode_value
from tests.edn._edn_same import explain, same
from tests.edn.edn_strategies import (
    COLLIDING,
    colliding_members,
    edn_map,
    edn_set,
)

if TYPE_CHECKING:
    from pathlib import Path

MEMORY_EDN = """{:learning/scores #{nil false 0.5M},
 :learning/flags #{0 false 0.51},
 :learning/ones #{1 true 1.0 1M 1/2},
 :cache/keys {0 :zero, false :no, 0.0 :double, 0M :decimal},
 :project/nested {:rows #{[1] [true] [1.0]}, :key {#{0 false} :both, #{0} :zero}},
 :cache/one 1,
 :cache/zero 0,
 :cache/vec [1],
 :cache/neg -0.0}
"""

#: (key, stored text a hand edit puts in SQLite): each a change Python's == misses.
SQLITE_EDITS = [
    # a set that lost elements, as a merging reader would have stored it
    ("learning/ones", '{"#set":[1,{"#ratio":"1/2"}]}'),
    ("learning/flags", '{"#set":[0,0.51]}'),
    # a map that lost keys
    ("cache/keys", '{"#map":[[0,{"#k":"decimal"}]]}'),
    ("cache/one", "1.0"),  # 1 against 1.0
    ("cache/one", "true"),  # 1 against true
    ("cache/one", '{"#N":"1"}'),  # 1 against 1N: equal in Clojure, another class
    ("cache/zero", "false"),  # 0 against false
    ("cache/neg", "0.0"),  # -0.0 against 0.0
    ("cache/vec", '{"#list":[1]}'),  # a vector against a list
]

#: (text in the file, what a hand edit puts there instead, the key it changes).
FILE_EDITS = [
    ("#{0 false 0.51}", "#{0 0.51}", "learning/flags"),
    ("#{nil false 0.5M}", "#{nil false 0.50M}", "learning/scores"),
    ("1/2}", "0.5}", "learning/ones"),
    ("0M :decimal", "0N :decimal", "cache/keys"),
    ("[true] [1.0]", "[true] [1]", "project/nested"),
    (":cache/zero 0,", ":cache/zero false,", "cache/zero"),
]


def _validate(edn: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["validate", "--edn", str(edn), "--db", str(db)])
    return status, capsys.readouterr().out


@pytest.fixture
def migrated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    edn = tmp_path / "memory.edn"
    edn.write_text(MEMORY_EDN, encoding="utf-8")
    db = tmp_path / "garrison.db"
    assert main(["migrate", "--edn", str(edn), "--db", str(db), "--validate"]) == 0
    assert "\nAGREE: " in capsys.readouterr().out
    return edn, db


def test_the_migration_keeps_every_member_python_would_merge(migrated: tuple[Path, Path]) -> None:
    _, db = migrated

    async def read() -> dict[str, object]:
        async with SqliteStore(db) as store:
            return await store.get_many(["learning/ones", "cache/keys", "learning/scores"])

    got = asyncio.run(read())
    ones = got["learning/ones"]
    assert type(ones) is EdnSet
    assert list(ones) == [1, True, 1.0, Decimal(1), Fraction(1, 2)]
    keys = got["cache/keys"]
    assert type(keys) is EdnMap
    assert [keys[0], keys[False], keys[0.0], keys[Decimal(0)]] == [
        Keyword("zero"),
        Keyword("no"),
        Keyword("double"),
        Keyword("decimal"),
    ]
    assert got["learning/scores"] == frozenset({None, False, Decimal("0.5")})


def test_validate_sees_each_hand_edit_of_a_sqlite_row(
    migrated: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    edn, db = migrated
    with sqlite3.connect(db) as connection:
        originals = dict(connection.execute("SELECT key, value FROM entries"))
    for key, edited in SQLITE_EDITS:
        with sqlite3.connect(db) as connection:
            connection.execute("UPDATE entries SET value = ? WHERE key = ?", (edited, key))
        status, report = _validate(edn, db, capsys)
        assert status == 1, f"validate missed {key} := {edited}"
        assert report.startswith("DISAGREE")
        assert f"different values: 1\n  {key}: " in report, report
        with sqlite3.connect(db) as connection:
            connection.execute("UPDATE entries SET value = ? WHERE key = ?", (originals[key], key))
        # Undone, the two sides agree again.
        status, report = _validate(edn, db, capsys)
        assert (status, report[:5]) == (0, "AGREE"), report


def test_validate_sees_each_hand_edit_of_the_edn_file(
    migrated: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    edn, db = migrated
    for before, after, key in FILE_EDITS:
        assert MEMORY_EDN.count(before) == 1
        edn.write_text(MEMORY_EDN.replace(before, after), encoding="utf-8")
        status, report = _validate(edn, db, capsys)
        assert status == 1, f"validate missed {before} -> {after}"
        assert f"different values: 1\n  {key}: " in report, report
    edn.write_text(MEMORY_EDN, encoding="utf-8")
    status, report = _validate(edn, db, capsys)
    assert (status, report[:5]) == (0, "AGREE")


def test_export_writes_back_every_member(
    migrated: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, db = migrated
    target = tmp_path / "exported.edn"
    assert main(["export", "--db", str(db), "--edn", str(target)]) == 0
    capsys.readouterr()
    exported = loads(target.read_text(encoding="utf-8"), strict=True)
    original = loads(MEMORY_EDN, strict=True)
    assert same(exported, original), explain(exported, original)
    assert main(["validate", "--edn", str(target), "--db", str(db)]) == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(colliding_members, min_size=1, max_size=6), st.booleans(), st.data())
def test_validate_compares_like_clojure_reads_the_texts(
    members: list[Any], as_map: bool, data: st.DataObject
) -> None:
    # One member swapped for one Python's == calls equal (1 for true, 1.0,
    # 1M, 1N...) or dropped: validate's comparison of the file's value with
    # the stored text says "same" exactly when the two EDN texts are the same.
    i = data.draw(st.integers(0, len(members) - 1))
    swap = data.draw(st.sampled_from([m for m in COLLIDING if m == members[i]] or [None]))
    changed = [*members[:i], *([] if swap is None else [swap]), *members[i + 1 :]]

    def build(items: list[Any]) -> Any:
        return edn_map([(m, n) for n, m in enumerate(items)]) if as_map else edn_set(items)

    file_value, stored_value = build(members), build(changed)
    texts_equal = dumps(file_value, sort_keys=True) == dumps(stored_value, sort_keys=True)
    assert same_as_stored(file_value, encode_value(stored_value), "k")[0] is texts_equal
    # The file as garrison reads it back agrees with what a migration stored.
    assert same_as_stored(loads(dumps(file_value)), encode_value(file_value), "k")[0]


@pytest.mark.parametrize("tail", ["", " ; a comment after the map"])
def test_top_level_keys_python_would_merge_migrate_as_separate_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tail: str
) -> None:
    edn = tmp_path / "memory.edn"
    edn.write_text("{0 :int, false :bool, 0.0 :double}\n" + tail, encoding="utf-8")
    db = tmp_path / "garrison.db"
    assert main(["migrate", "--edn", str(edn), "--db", str(db), "--validate"]) == 0
    assert "\nAGREE: " in capsys.readouterr().out

    async def read() -> dict[str, object]:
        async with SqliteStore(db) as store:
            return await store.get_many(["#edn 0", "#edn false", "#edn 0.0"])

    assert asyncio.run(read()) == {
        "#edn 0": Keyword("int"),
        "#edn false": Keyword("bool"),
        "#edn 0.0": Keyword("double"),
    }
