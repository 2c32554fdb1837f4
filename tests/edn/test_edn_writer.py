"""Writing EDN: Clojure's printed forms, options, and values with no EDN form."""

from __future__ import annotations

import io
import uuid
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum
from fractions import Fraction
from typing import Any

import pytest

from garrison.edn import (
    MAP_ENTRY_SEPARATOR,
    BigInt,
    Char,
    FrozenMap,
    Keyword,
    Symbol,
    Tagged,
    Vector,
    dump,
    dumps,
    dumps_entry,
    loads,
)
from garrison.edn._writer import MAX_DEPTH
from garrison.exceptions import EdnEncodeError

K = Keyword


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "nil"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-(2**80), str(-(2**80))),
        (BigInt(42), "42N"),
        (1.5, "1.5"),
        (2.0, "2.0"),
        (1e16, "1e+16"),
        (float("inf"), "##Inf"),
        (float("-inf"), "##-Inf"),
        (float("nan"), "##NaN"),
        (Decimal("1.50"), "1.50M"),
        (Decimal("1E+3"), "1E+3M"),
        (Fraction(22, 7), "22/7"),
        ("plain", '"plain"'),
        ('q"b\\n\nt\tr\rb\bf\f', r'"q\"b\\n\nt\tr\rb\bf\f"'),
        ("\x00\x1f", r'"\u0000\u001f"'),
        ("é😀", '"é😀"'),
        ("\ud800", r'"\ud800"'),
        (Char("a"), r"\a"),
        (Char("\n"), r"\newline"),
        (Char(" "), r"\space"),
        (Char("\t"), r"\tab"),
        (Char("\r"), r"\return"),
        (Char("\f"), r"\formfeed"),
        (Char("\b"), r"\backspace"),
        (Char("\x00"), r"\u0000"),
        (Char("é"), r"\é"),
        (Char("\u00a0"), r"\u00a0"),
        (K("user/id"), ":user/id"),
        (K("embed-token/5fe3"), ":embed-token/5fe3"),
        (Symbol("clojure.core/inc"), "clojure.core/inc"),
        ([1, [2]], "[1 [2]]"),
        ([], "[]"),
        ((1, 2), "(1 2)"),
        ((), "()"),
        (Vector([1, 2]), "[1 2]"),
        (frozenset(), "#{}"),
        ({1}, "#{1}"),
        ({}, "{}"),
        ({K("a"): 1, K("b"): [2, 3]}, "{:a 1, :b [2 3]}"),
        (FrozenMap({K("a"): 1}), "{:a 1}"),
        ({Vector([1, 2]): FrozenMap({K("a"): 1})}, "{[1 2] {:a 1}}"),
        (Tagged("my.ns.Rec", {K("a"): 1}), "#my.ns.Rec{:a 1}"),
        (Tagged("object", [Symbol("java.lang.Object"), 1, "x"]), '#object[java.lang.Object 1 "x"]'),
        (Tagged("x/y", 5), "#x/y 5"),
        (Tagged("x", None), "#x nil"),
        (uuid.UUID(int=1), '#uuid "00000000-0000-0000-0000-000000000001"'),
        (
            datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
            '#inst "2024-01-02T03:04:05.123-00:00"',
        ),
        (
            datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            '#inst "2024-01-02T03:04:05.000-00:00"',
        ),
        (
            datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
            '#inst "2024-01-02T03:04:05.123456-00:00"',
        ),
    ],
)
def test_values_are_written_as_clojure_prints_them(value: Any, text: str) -> None:
    assert dumps(value) == text


def test_what_is_written_reads_back_equal_and_of_the_same_kind() -> None:
    value = {
        K("a"): [1, (2, 3), frozenset({K("x")})],
        "s": Decimal("0.10"),
        Vector([1, Vector([2])]): BigInt(5),
        Symbol("sym"): Tagged("rec", {K("k"): Char("c")}),
    }
    back = loads(dumps(value))
    assert back == value
    assert type(back[K("a")][1]) is tuple
    assert type(back[Vector([1, Vector([2])])]) is BigInt
    assert str(back["s"]) == "0.10"


def test_sort_keys_gives_one_text_for_equal_values() -> None:
    first = {K("b"): 1, K("a"): {K("z"): 1, K("y"): 2}, "s": frozenset({3, 1, 2})}
    second = {"s": frozenset({2, 3, 1}), K("a"): {K("y"): 2, K("z"): 1}, K("b"): 1}
    assert dumps(first, sort_keys=True) == dumps(second, sort_keys=True)
    assert dumps(first, sort_keys=True) == '{"s" #{1 2 3}, :a {:y 2, :z 1}, :b 1}'


def test_entries_joined_equal_the_whole_map() -> None:
    value = {K("a"): 1, K("b"): [2, {K("c"): "x"}], Vector([1]): None, "s": frozenset()}
    entries = [dumps_entry(k, v) for k, v in value.items()]
    assert "{" + MAP_ENTRY_SEPARATOR.join(entries) + "}" == dumps(value)
    assert dumps_entry(K("a"), {K("z"): 1, K("y"): 2}, sort_keys=True) == ":a {:y 2, :z 1}"


def test_deep_nesting_is_written_without_recursion() -> None:
    depth = MAX_DEPTH - 2  # the innermost {:k (1)} is two levels deeper: the reader's limit
    value: Any = []
    for _ in range(depth):
        value = [value, {K("k"): (1,)}]
    text = dumps(value)
    assert text.startswith("[" * depth + "[] {:k (1)}]")
    assert loads(text)[1] == {K("k"): (1,)}


def test_values_with_no_edn_form_are_refused_clearly() -> None:
    with pytest.raises(EdnEncodeError, match="bytes"):
        dumps([b"raw"])
    with pytest.raises(EdnEncodeError, match="date"):
        dumps(date(2024, 1, 1))
    with pytest.raises(EdnEncodeError, match="naive datetime"):
        dumps(datetime(2024, 1, 1))
    with pytest.raises(EdnEncodeError, match="finite"):
        dumps(Decimal("NaN"))
    with pytest.raises(EdnEncodeError, match="Basic Multilingual Plane"):
        dumps(Char("😀"))
    with pytest.raises(EdnEncodeError, match="cannot appear"):
        dumps(K("has space"))
    with pytest.raises(EdnEncodeError, match="cannot appear"):
        dumps(Symbol("a(b"))
    with pytest.raises(EdnEncodeError, match="not an EDN tag"):
        dumps(Tagged("1bad", 1))


def test_strict_writing_refuses_keywords_clojure_cannot_read() -> None:
    with pytest.raises(EdnEncodeError, match="strict"):
        dumps({K("embed-token/5fe3"): 1}, strict=True)
    assert dumps({K("embed-token/x5fe3"): 1}, strict=True) == "{:embed-token/x5fe3 1}"


def test_default_hook_converts_unknown_values() -> None:
    assert dumps([b"ab", date(2024, 1, 2)], default=str) == '["b\'ab\'" "2024-01-02"]'
    with pytest.raises(EdnEncodeError):
        dumps(object(), default=lambda v: v)


class _Level(IntEnum):
    HIGH = 3


def test_subclasses_write_as_their_base_kind() -> None:
    class Text(str):
        __slots__ = ()

    assert dumps(OrderedDict([(K("a"), 1)])) == "{:a 1}"
    assert dumps(_Level.HIGH) == "3"
    assert dumps(Text("x")) == '"x"'
    assert dumps({K("k"): Text("v")}) == '{:k "v"}'


def test_dump_writes_to_a_file() -> None:
    out = io.StringIO()
    dump({K("a"): [1]}, out)
    assert out.getvalue() == "{:a [1]}"


def test_strict_and_lenient_calls_do_not_share_what_they_accepted() -> None:
    odd = {K("embed-token/5fe3"): 1}
    assert dumps(odd) == "{:embed-token/5fe3 1}"
    with pytest.raises(EdnEncodeError, match="strict"):
        dumps(odd, strict=True)
    assert dumps_entry(K("embed-token/5fe3"), 1) == ":embed-token/5fe3 1"
