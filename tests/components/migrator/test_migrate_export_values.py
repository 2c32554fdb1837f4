"""Every EDN map, migrated into SQLite and exported back, reads back the same.

The generated ``memory.edn`` holds values of every kind (colliding set
members and map keys, EDN maps and sets Python would merge, tags, ratios,
BigInts, decimals by scale, instants), under keyword keys and, at the top
level too, keys Python's ``==`` merges (``0``, ``false``, ``0.0``, ``0M``).
The exported file must read back exactly as the migrated one does, and
``validate`` must say both sides agree.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from garrison.components.migrator import export, migrate, validate
from garrison.edn import BigInt, EdnMap, EdnSet, Keyword, dumps, equal, load, loads
from garrison.exceptions import EdnEncodeError
from garrison.stores import SqliteStore
from tests.edn import _edn_same, edn_strategies
from tests.edn.edn_strategies import COLLIDING, edn_map
from tests.stores.test_router_values import no_edn_form
from tests.stores.value_strategies import same, values

if TYPE_CHECKING:
    from pathlib import Path

#: The values an EDN file can hold: the codec's value space, and the store's
#: without the parts EDN has no form for (tests/stores/test_router_values.py
#: checks that the router refuses exactly those where it writes EDN).
_edn_values = st.one_of(edn_strategies.values, values.filter(lambda v: not no_edn_form(v)))
_keys = edn_strategies.names.map(Keyword) | st.sampled_from(COLLIDING)
#: The top-level map the reader makes of the entries: a dict, or an EdnMap
#: when Python would merge two of its keys.
_memory = st.lists(st.tuples(_keys, _edn_values), min_size=1, max_size=6).map(edn_map)

_counter = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(memory=_memory)
@example(
    memory=EdnMap(
        [
            (0, EdnSet(COLLIDING)),
            (False, EdnMap([(v, i) for i, v in enumerate(COLLIDING)])),
            (0.0, [BigInt(1), 1, 1.0, True]),
            (Keyword("a/b"), EdnSet([None, False, 0.5, Fraction(1, 2)])),
        ]
    )
)
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # see test_values.py
async def test_migrate_then_export_gives_back_the_same_map(tmp_path: Path, memory: Any) -> None:
    folder = tmp_path / f"example-{next(_counter)}"
    folder.mkdir()
    source = folder / "memory.edn"
    exported = folder / "exported.edn"
    text = dumps(memory)
    source.write_text(text, encoding="utf-8")
    original = loads(text, strict=True)  # what the migrator reads: the EDN kinds of `memory`
    assert _edn_same.same(original, memory), _edn_same.explain(original, memory)

    async with SqliteStore(folder / "garrison.db") as store:
        summary = await migrate(store, source, batch_size=2)
        assert summary.ok, summary.render()
        assert summary.written == summary.total == len(original)
        report = await validate(store, source)
        assert report.agree, report.comparison.summary()
        await export(store, exported)
        assert (await validate(store, exported)).agree

    with exported.open(encoding="utf-8") as fp:
        back = load(fp, strict=True)  # no duplicate key or element either
    assert same(back, original), _edn_same.explain(back, original)
    assert equal(back, memory)


async def test_an_export_names_the_key_of_a_value_with_no_edn_form(tmp_path: Path) -> None:
    # sqlite-only admits what only SQLite can hold; the rollback export must say where it is.
    async with SqliteStore(tmp_path / "garrison.db") as store:
        await store.put_many([("a/ok", 1), ("a/day", dt.date(2024, 5, 1))])
        with pytest.raises(EdnEncodeError, match=r"cannot export key 'a/day': datetime.date"):
            await export(store, tmp_path / "exported.edn")
    left = await asyncio.to_thread(lambda: [p.name for p in tmp_path.iterdir() if "edn" in p.name])
    assert left == []  # neither the file nor its temporary file
