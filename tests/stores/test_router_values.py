"""Every value through the mode router, in every mode, reads back the same, restarted or not.

Before a restart a value comes from the side the mode reads in this process;
after one it comes through the EDN file (``edn-only``, ``dual-write``) or
SQLite's value format (``sqlite-first``, ``sqlite-only``). An EDN file keeps
EDN kinds, not Python classes (a ``Vector`` and a ``list`` are both a vector
there), so a value read through it must be exactly what the codec reads back
from the value's text, and the same EDN kinds as the value written; SQLite
keeps the Python classes themselves.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from garrison.edn import BigInt, Char, EdnMap, EdnSet, FrozenMap, Tagged, dumps, equal, loads
from garrison.exceptions import EdnEncodeError, RefusedWriteError
from garrison.stores import Mode, ModeRouter
from garrison.stores._protocol import MISSING
from tests.edn import _edn_same, edn_strategies
from tests.edn.edn_strategies import COLLIDING
from tests.stores.test_router import Sides
from tests.stores.value_strategies import same, values

if TYPE_CHECKING:
    from pathlib import Path

#: The store's value space and the EDN codec's (wider names and tags, ratios,
#: instants in every offset, colliding set members and map keys in both).
_values = st.one_of(values, edn_strategies.values)
#: Up to four entries under keyword keys, written as one batch.
_entries = st.dictionaries(edn_strategies.names, _values, min_size=1, max_size=4)

#: Each mode, what it writes and what answers a read after a restart.
_WRITES_EDN = {Mode.EDN_ONLY, Mode.DUAL_WRITE, Mode.SQLITE_FIRST}
_WRITES_SQLITE = {Mode.DUAL_WRITE, Mode.SQLITE_FIRST, Mode.SQLITE_ONLY}
_READS_SQLITE = {Mode.SQLITE_FIRST, Mode.SQLITE_ONLY}
_BOTH_SIDES = {Mode.DUAL_WRITE, Mode.SQLITE_FIRST}
#: The switches that lead from a new installation into each mode.
_PATH = {
    Mode.EDN_ONLY: [],
    Mode.DUAL_WRITE: [Mode.DUAL_WRITE],
    Mode.SQLITE_FIRST: [Mode.DUAL_WRITE, Mode.SQLITE_FIRST],
    Mode.SQLITE_ONLY: [Mode.DUAL_WRITE, Mode.SQLITE_FIRST, Mode.SQLITE_ONLY],
}


def no_edn_form(value: Any) -> bool:
    """Whether ``value`` holds a part EDN cannot write (said here, not asked of the writer).

    A decimal NaN or infinity (EDN has finite ``M`` decimals only), a date
    without a time, a datetime without a zone (``#inst`` needs one), and a
    character outside the Basic Multilingual Plane (Clojure's ``char`` is
    UTF-16).
    """
    pending = [value]
    while pending:
        part = pending.pop()
        if isinstance(part, Decimal) and not part.is_finite():
            return True
        if isinstance(part, dt.datetime):
            if part.tzinfo is None:
                return True
        elif isinstance(part, dt.date):
            return True
        if isinstance(part, Char) and ord(part.value) > 0xFFFF:
            return True
        if isinstance(part, Tagged):
            pending.append(part.value)
        elif isinstance(part, Mapping | EdnMap):
            pending.extend(part.keys())
            pending.extend(part.values())
        elif isinstance(part, list | tuple | set | frozenset | EdnSet):
            pending.extend(part)
    return False


def through_edn(value: Any) -> Any:
    """What an EDN file gives back for ``value``: the codec's reading of its text."""
    return loads(dumps(value))


async def _enter(router: ModeRouter, mode: Mode) -> None:
    for step in _PATH[mode]:
        await router.switch_mode(step, reason="property test")
        await router.wait_repaired()
    assert router.mode is mode


def _check(where: str, back: Any, value: Any, *, through_file: bool) -> None:
    assert equal(back, value), f"{where}: {back!r:.300} is not = {value!r:.300}"
    if through_file:
        # Through the EDN file: exactly what the codec reads, the same EDN kinds.
        expected = through_edn(value)
        assert same(back, expected), f"{where}: {back!r:.300} != {expected!r:.300}"
        assert _edn_same.same(back, value), f"{where}: {_edn_same.explain(back, value)}"
    else:
        assert same(back, value), f"{where}: {back!r:.300} != {value!r:.300}"


_counter = itertools.count()


@pytest.mark.parametrize("mode", list(Mode))
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entries=_entries)
# Every run covers the classes Python's == merges, and a batch the EDN file refuses.
@example(
    entries={"c/set": EdnSet(COLLIDING), "c/map": EdnMap([(v, i) for i, v in enumerate(COLLIDING)])}
)
@example(entries={"r/ok": [BigInt(1), 1.0], "r/no": {"day": dt.date(2024, 5, 1)}})
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # see test_values.py
async def test_every_value_reads_back_the_same_through_the_router(
    tmp_path: Path, mode: Mode, entries: dict[str, Any]
) -> None:
    folder = tmp_path / f"example-{next(_counter)}"
    folder.mkdir()
    sides = Sides(folder)
    router = await sides.open()
    try:
        await _enter(router, mode)
        refused = {k for k, v in entries.items() if mode in _WRITES_EDN and no_edn_form(v)}
        if refused:
            # All or none: one entry the EDN file cannot hold refuses the batch.
            with pytest.raises(RefusedWriteError) as batch:
                await router.put_many(list(entries.items()))
            assert batch.value.key in refused
            assert await sides.edn.count() == await sides.sqlite.count() == 0
            for key in refused:
                with pytest.raises(RefusedWriteError, match="EDN file cannot hold") as one:
                    await router.put(key, entries[key])
                assert one.value.key == key
                assert await router.get(key, MISSING) is MISSING
        kept = {k: v for k, v in entries.items() if k not in refused}
        await router.put_many(list(kept.items()))

        for restarted in (False, True):
            if restarted:
                router = await sides.restart()
                assert router.mode is mode
            when = "after" if restarted else "before"
            # The router, and each side the mode writes (the other stays empty).
            file_read = restarted and mode not in _READS_SQLITE
            read = await router.get_many(list(entries))
            assert sorted(read) == sorted(kept)
            scanned = await router.scan()
            assert [k for k, _ in scanned] == sorted(kept)
            edn_side = await sides.edn.get_many(list(kept)) if mode in _WRITES_EDN else {}
            sqlite_side = await sides.sqlite.get_many(list(kept)) if mode in _WRITES_SQLITE else {}
            assert await sides.edn.count() == len(edn_side)
            assert await sides.sqlite.count() == len(sqlite_side)
            for (key, value), (_, in_scan) in zip(sorted(kept.items()), scanned, strict=True):
                where = f"{mode}, {when} a restart, key {key!r}"
                _check(f"{where}, get_many", read[key], value, through_file=file_read)
                _check(f"{where}, get", await router.get(key), value, through_file=file_read)
                _check(f"{where}, scan", in_scan, value, through_file=file_read)
                if key in edn_side:
                    _check(f"{where}, EDN side", edn_side[key], value, through_file=restarted)
                if key in sqlite_side:
                    _check(f"{where}, SQLite side", sqlite_side[key], value, through_file=False)
            if mode in _BOTH_SIDES:
                comparison = await router.validate()
                assert comparison.clean, f"{mode}, {when} a restart: {comparison.summary()}"
                assert comparison.common == len(kept)
    finally:
        await sides.close()


def test_the_refused_classes_are_exactly_those_without_an_edn_form() -> None:
    """``no_edn_form`` says what the writer refuses, no more and no less."""
    refused = [
        Decimal("NaN"),
        Decimal("-Infinity"),
        dt.date(2024, 5, 1),
        dt.datetime(2024, 5, 1, 10, 0),
        Char("\U0001f600"),
        [FrozenMap({1: (dt.date(2024, 5, 1),)})],
        Tagged("my/tag", {Char("\U0001f600"): 1}),
    ]
    kept = [
        Decimal("1.50"),
        dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC),
        Char("\uffff"),
        [FrozenMap({1: (dt.datetime(2024, 5, 1, tzinfo=dt.UTC),)})],
    ]
    for value in refused:
        assert no_edn_form(value)
        with pytest.raises(
            EdnEncodeError, match=r"no EDN form|outside the Basic Multilingual Plane"
        ):
            dumps(value)
    for value in kept:
        assert not no_edn_form(value)
        assert equal(loads(dumps(value)), value)
