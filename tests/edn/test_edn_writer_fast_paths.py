"""The writer's fast paths (C-level dispatch per container, orjson for float
vectors, isoformat without a timespec) write exactly the text of the exact
iterative writer, including where they must hand over to it."""

from __future__ import annotations

import math
import random
import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from garrison.edn import (
    MAP_ENTRY_SEPARATOR,
    BigInt,
    Keyword,
    Symbol,
    Tagged,
    Vector,
    dumps,
    dumps_entry,
    loads,
)
from garrison.edn._writer import Writer
from garrison.exceptions import EdnEncodeError

K = Keyword


def _exact(value: Any, *, sort_keys: bool = False) -> str:
    out: list[str] = []
    Writer(sort_keys=sort_keys, strict=False, default=None).write(value, out)
    return "".join(out)


def _random_floats(seed: int, count: int) -> list[float]:
    rng = random.Random(seed)
    floats = [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(count)]
    floats += [rng.random() * 10.0 ** rng.randint(-30, 30) for _ in range(count)]
    return [f for f in floats if math.isfinite(f)]


def test_float_vectors_are_written_as_repr_writes_them() -> None:
    floats = _random_floats(11, 4000)
    floats += [0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 5e-324]
    for start in range(0, len(floats), 16):
        chunk = floats[start : start + 16]
        assert dumps(chunk) == "[" + " ".join(map(repr, chunk)) + "]"
        assert loads(dumps(chunk)) == chunk


@pytest.mark.parametrize(
    "value",
    [
        [1.5, math.inf],
        [math.nan, 2.5],
        [-math.inf],
        {K("a"): math.inf, K("b"): 1.0},
        {math.inf: 1, 2.5: 2},
        {K("a"): Symbol("inf"), K("b"): Symbol("nan")},
        [Symbol("-inf"), 1.5],
        (1.5, math.nan),
        frozenset({math.inf, 1.0}),
        math.inf,
        Symbol("nan"),
        Tagged("x", math.inf),
    ],
)
def test_non_finite_floats_and_symbols_named_like_them(value: Any) -> None:
    assert dumps(value) == _exact(value)
    assert dumps(value, sort_keys=True) == _exact(value, sort_keys=True)


class _Flt(float):
    pass


class _Str(str):
    pass


def test_mixed_and_subclassed_elements_match_the_exact_writer() -> None:
    value = {
        K("floats"): [1.5, 2, 3.5],
        K("sub"): [_Flt(1.5), 2.5],
        K("bigs"): [1.5, BigInt(7)],
        K("vec"): Vector([1.5, 2.5]),
        K("tuple"): (1.5, 2.5),
        _Str("key"): _Str("value"),
        K("nested"): [[1.5, 2.5], [3.5], []],
        K("none"): [1.5, None],
        (1, 2): {frozenset({K("x")}): [True, False]},
    }
    assert dumps(value) == _exact(value)
    assert dumps(value, sort_keys=True) == _exact(value, sort_keys=True)


def test_datetimes_keep_milliseconds_or_microseconds() -> None:
    base = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    cases = {
        base: '#inst "2024-05-01T10:00:00.000-00:00"',
        base.replace(microsecond=123000): '#inst "2024-05-01T10:00:00.123-00:00"',
        base.replace(microsecond=123456): '#inst "2024-05-01T10:00:00.123456-00:00"',
        base.replace(microsecond=1): '#inst "2024-05-01T10:00:00.000001-00:00"',
        base.astimezone(timezone(timedelta(hours=2))): '#inst "2024-05-01T10:00:00.000-00:00"',
        base.replace(year=999): '#inst "0999-05-01T10:00:00.000000-00:00"',
    }
    for when, text in cases.items():
        assert dumps(when) == text
        assert loads(text) == when


def test_deep_nesting_hands_over_to_the_iterative_writer() -> None:
    value: Any = [1.5]
    for _ in range(4998):
        value = {K("v"): [value]}
    text = dumps(value)
    assert text.startswith("{:v [{:v [")
    assert text.endswith("[1.5]" + "]}" * 4998)
    # An error deep inside leaves the cached encoder usable for the next call.
    with pytest.raises(EdnEncodeError, match="no EDN form"):
        dumps({K("v"): [value, object()]})
    assert dumps([1.5, {K("a"): 1}]) == "[1.5 {:a 1}]"


def test_entries_join_to_the_whole_map_on_every_path() -> None:
    value = {
        K("floats"): [0.5, 1e-05, 2.5],
        K("fast"): [0.5, 1.5],
        K("inf"): [1.5, math.inf],
        K("nan"): math.nan,
        K("sym"): Symbol("inf"),
        K("when"): datetime(2024, 5, 1, tzinfo=UTC),
        "text": 'with "quotes"\n',
        (1, 2): Tagged("t", math.inf),
    }
    entries = [dumps_entry(k, v) for k, v in value.items()]
    assert "{" + MAP_ENTRY_SEPARATOR.join(entries) + "}" == dumps(value) == _exact(value)
