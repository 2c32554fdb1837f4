"""The stored-value encoder's C accelerator against the pure encoder: the same text, always.

Stored texts are compared and digested (the migrator's conflict check and
validation rely on it), so the accelerator must write byte for byte what the
pure encoder writes, and raise exactly when it raises.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import struct
import subprocess
import sys
import uuid
from collections import OrderedDict
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.edn import BigInt, Char, FrozenMap, Keyword, Symbol, Tagged, Vector
from garrison.exceptions import EdnEncodeError
from garrison.stores import _values
from garrison.stores._values import decode_value, encode_value, encode_value_pure
from tests.stores.value_strategies import json_values, same, values

accelerator = _values.accelerator
needs_accelerator = pytest.mark.skipif(
    accelerator is None, reason="garrison.stores._cvalues is not built"
)


def _c(value: Any) -> str | None:
    assert accelerator is not None
    text: str | None = accelerator.encode(value)
    return text


def _agree(value: Any) -> str:
    """The pure text of ``value``, after checking the accelerator writes it or hands over."""
    pure = encode_value_pure(value)
    assert _c(value) in (pure, None)
    assert encode_value(value) == pure
    return pure


@needs_accelerator
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@given(values)
@settings(max_examples=300)
def test_every_value_gets_the_pure_encoders_text(value: Any) -> None:
    text = _agree(value)
    assert same(decode_value(text), value)


@needs_accelerator
@given(json_values)
@settings(max_examples=300)
def test_plain_json_gets_the_pure_encoders_text(value: Any) -> None:
    assert _c(value) == encode_value_pure(value)


@needs_accelerator
@given(st.floats(allow_nan=False, allow_infinity=False))
@settings(max_examples=500)
def test_floats_are_written_as_orjson_writes_them(value: float) -> None:
    assert _c([value]) == encode_value_pure([value])


@needs_accelerator
def test_floats_around_every_notation_switch() -> None:
    rng = random.Random(7)
    samples = [0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, 0.1, 1 / 3, 2.0**53]
    for exponent in range(-330, 309):
        samples += [10.0**exponent, -(10.0**exponent), 2.5 * 10.0**exponent]
    for _ in range(20_000):  # random bit patterns: every exponent and digit count
        (value,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
        if math.isfinite(value):
            samples.append(value)
    assert _c(samples) == encode_value_pure(samples)


@needs_accelerator
@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -(2**63),
        2**63 - 1,
        2**63,
        -(2**63) - 1,
        10**40,
        math.nan,
        math.inf,
        -math.inf,
        "",
        "".join(chr(c) for c in range(0x80)),
        "Zürich 日本語 😀 \u2028\u2029\ufeff\x7f",
        Keyword("a"),
        Keyword("ns/name"),
        Symbol("sym/x"),
        Char("\n"),
        BigInt(42),
        Vector([1, Vector([2])]),
        (1, (2, ())),
        frozenset({Keyword("a"), 1}),
        {1, 2},
        {"#k": 1},
        {"#esc": {"#k": "x"}},
        {"#": []},
        {"a": 1, "#b": 2},
        {Keyword("a"): [1, {Keyword("b"): None}]},
        {1: "x", "y": 2},
        FrozenMap({Keyword("a"): 1}),
        Tagged("my/rec", {Keyword("a"): 1}),
        Decimal("1.50"),
        Fraction(22, 7),
        dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2024, 5, 1, 12, 0),  # naive
        dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC),
        dt.date(2024, 5, 1),
        dt.time(12, 0),
        uuid.UUID(int=12345),
        OrderedDict(a=1),  # a dict subclass: stored as the plain kind
        type("MyStr", (str,), {})("sub"),
        type("MyInt", (int,), {})(7),
        type("MyList", (list,), {})([1, 2]),
    ],
    ids=repr,
)
def test_each_kind_gets_the_pure_encoders_text(value: Any) -> None:
    _agree(value)


@needs_accelerator
def test_the_accelerator_writes_the_common_kinds_itself() -> None:
    # Legacy records (keyword-keyed maps of strings, numbers, keywords, sets)
    # must not fall back, or the accelerator would gain nothing.
    record = {
        Keyword("session/user"): Keyword("user/u1"),
        Keyword("session/tags"): frozenset({Keyword("a")}),
        Keyword("messages"): [{Keyword("text"): "héllo\n", Keyword("tokens"): 12}],
        Keyword("weights"): (0.25, None, True),
        Keyword("at"): dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        Keyword("id"): uuid.UUID(int=1),
    }
    assert _c(record) == encode_value_pure(record)


@needs_accelerator
def test_lone_surrogates_raise_the_pure_encoders_error() -> None:
    assert _c({"a": "\ud800"}) is None
    with pytest.raises(EdnEncodeError, match="surrogates"):
        encode_value({"a": "\ud800"})


@needs_accelerator
def test_values_with_no_stored_form_raise_the_pure_encoders_error() -> None:
    assert _c([b"bytes"]) is None
    with pytest.raises(EdnEncodeError, match="bytes"):
        encode_value([b"bytes"])


@needs_accelerator
def test_deep_nesting_is_left_to_the_pure_encoder_with_the_same_text() -> None:
    assert accelerator is not None
    for depth in (accelerator.MAX_DEPTH - 2, accelerator.MAX_DEPTH + 5, 300):
        nested: Any = [1.5e-6]
        for _ in range(depth):
            nested = [nested]
        assert encode_value(nested) == encode_value_pure(nested)
    # Past orjson's limit the pure encoder uses the standard library (1.5e-06).
    assert "1.5e-06" in encode_value(nested)
    deep: Any = 1e-7
    for _ in range(150):  # markers nest two JSON levels per value level
        deep = (deep,)
    assert encode_value(deep) == encode_value_pure(deep)


@needs_accelerator
def test_interrupts_from_tag_calls_are_not_swallowed() -> None:
    class Boom(BaseException):
        pass

    class Bad(Decimal):
        def __str__(self) -> str:
            raise Boom

    with pytest.raises(Boom):
        encode_value([Bad("1")])


@needs_accelerator
def test_no_extensions_environment_turns_the_accelerator_off() -> None:
    probe = (
        "from garrison.stores import _values; from garrison.edn import Keyword\n"
        "print(_values.accelerator is None, _values.encode_value({Keyword('a'): 1.5e-6}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "GARRISON_NO_EXTENSIONS"}
    off = subprocess.run(
        [sys.executable, "-c", probe],
        env={**env, "GARRISON_NO_EXTENSIONS": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    on = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert off == ["True", '{":a":1.5e-6}']
    assert on == ["False", off[1]]


@pytest.mark.skipif(
    os.environ.get("GARRISON_REQUIRE_EXTENSIONS", "") in ("", "0"),
    reason="GARRISON_REQUIRE_EXTENSIONS is not set (CI sets it)",
)
def test_ci_builds_the_value_accelerator() -> None:
    assert _values.accelerator is not None, "garrison.stores._cvalues was not built"


@needs_accelerator
def test_a_map_changed_while_it_is_written_is_left_to_the_pure_encoder() -> None:
    # A pathological value whose text conversion changes the map holding it:
    # the accelerator hands over rather than write a map it did not see whole.
    record: dict[Any, Any] = {}

    class Sneaky(Decimal):
        def __str__(self) -> str:
            record[len(record)] = "added"
            return "1"

    record.update({"a": Sneaky(1), "b": 2})
    assert _c(record) is None
    with pytest.raises(RuntimeError, match="changed size"):
        encode_value(record)
