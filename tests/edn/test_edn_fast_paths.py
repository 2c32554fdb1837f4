"""The reader's fast paths (whole numeric vectors, keyword + scalar pairs, simple
string escapes) read exactly what the token-by-token path reads, and fall back
to it whenever the input leaves the common shape."""

from __future__ import annotations

import gc
import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from garrison.edn import BigInt, Keyword, Symbol, Tagged, dumps, iter_values, loads
from garrison.exceptions import EdnSyntaxError

K = Keyword


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1.5 -2.25 3e2 4.0E-3]", [1.5, -2.25, 300.0, 0.004]),
        ("[1.5,2.5 ,\n 3.5]", [1.5, 2.5, 3.5]),
        ("[ 1.5 ]", [1.5]),
        ("[1 -2 +3 0]", [1, -2, 3, 0]),
        ("[1,2,3]", [1, 2, 3]),
        ("#{1 2 3}", frozenset({1, 2, 3})),
        ("#{1,2, 2}", frozenset({1, 2})),
        # Any other token inside: the collection is read token by token.
        ("[1.5 2]", [1.5, 2]),
        ("[1.5 ; a comment\n 2.5]", [1.5, 2.5]),
        ("[1.5 #_ 9.5 2.5]", [1.5, 2.5]),
        ("[1 2N]", [1, BigInt(2)]),
        ("[1.5M 2.5]", None),  # checked below: a Decimal, not a float
        ("[12345678901234567890123 1]", [12345678901234567890123, 1]),
        ("#{1 :a}", frozenset({1, K("a")})),
        ("[]", []),
        ("#{}", frozenset()),
    ],
)
def test_numeric_vectors_and_sets_read_as_token_by_token(text: str, expected: Any) -> None:
    value = loads(text)
    if expected is None:
        assert type(value[0]).__name__ == "Decimal"
        assert value[1] == 2.5
        return
    assert value == expected
    assert type(value) is type(expected)
    assert [type(v) for v in sorted(value, key=repr)] == [
        type(v) for v in sorted(expected, key=repr)
    ]


def test_float_vector_items_are_floats_and_int_vector_items_are_ints() -> None:
    floats, ints = loads("[[1.0 2.0] [1 2]]")
    assert [type(v) for v in floats] == [float, float]
    assert [type(v) for v in ints] == [int, int]


def test_strict_mode_still_rejects_duplicate_int_set_elements() -> None:
    with pytest.raises(EdnSyntaxError, match=r"Duplicate key: 1 \(set element") as info:
        loads("[0 #{1 2 1}]", strict=True)
    assert info.value.column == 4


def test_a_second_top_level_vector_is_reported_where_it_starts() -> None:
    with pytest.raises(EdnSyntaxError, match="more than one value") as info:
        loads("[1.5]\n  [2.5 3.5]")
    assert (info.value.line, info.value.column) == (2, 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{:a "x" :b 1 :c 2.5 :d :e :f nil :g true :h false}',
         {K("a"): "x", K("b"): 1, K("c"): 2.5, K("d"): K("e"), K("f"): None, K("g"): True,
          K("h"): False}),
        ('{:t #inst "2024-05-01T10:00:00.123-00:00"}',
         {K("t"): datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)}),
        ('{:a "with \\"escape\\""}', {K("a"): 'with "escape"'}),
        ("{:a nilly}", {K("a"): Symbol("nilly")}),
        ("{:a 1N}", {K("a"): 1}),
        ("{:a ; comment\n 1}", {K("a"): 1}),
        ("{:a 01.5}", {K("a"): 1.5}),
    ],
)  # fmt: skip
def test_keyword_scalar_pairs_read_as_token_by_token(text: str, expected: object) -> None:
    assert loads(text) == expected


def test_pairs_outside_collections_feed_tags_discards_and_the_top_level() -> None:
    assert list(iter_values(':a 1 :b "x"')) == [K("a"), 1, K("b"), "x"]
    assert loads("[#_ :a 1]") == [1]
    assert loads("[#my/tag :a 1]") == [Tagged("my/tag", K("a")), 1]
    assert loads("#_ :a 1") == 1
    with pytest.raises(EdnSyntaxError, match="more than one value") as info:
        loads(":a  1")
    assert info.value.column == 5


def test_a_pair_with_an_invalid_keyword_names_its_position() -> None:
    with pytest.raises(EdnSyntaxError, match="auto-resolved") as info:
        loads("{:a 1 ::b 2}")
    assert info.value.column == 7
    with pytest.raises(EdnSyntaxError, match="auto-resolved") as info:
        loads("{:a ::b}")
    assert info.value.column == 5
    with pytest.raises(EdnSyntaxError, match="strict mode"):
        loads("{:ns/5fe3 1}", strict=True)
    assert loads("{:ns/5fe3 1}") == {K("ns/5fe3"): 1}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('a\\"b', 'a"b'),
        ("a\\\\nb", "a\\nb"),
        ("a\\\\\\nb", "a\\\nb"),
        ("\\t\\r\\f\\b\\n", "\t\r\f\b\n"),
        ("\\\\\\\\", "\\\\"),
        ("x\\\\", "x\\"),
        ("\\u00e9\\\\", "é\\"),
        ("\\101\\\\", "A\\"),
        ("日本\\t語 😀\\\\", "日本\t語 😀\\"),
    ],
)
def test_string_escapes_decode_exactly(body: str, expected: str) -> None:
    assert loads(f'"{body}"') == expected
    assert loads(dumps(expected)) == expected


@pytest.mark.parametrize("body", ["a\\qb", "\\\\\\x", "\\u12", "\\400"])
def test_invalid_escapes_still_raise(body: str) -> None:
    with pytest.raises(EdnSyntaxError):
        loads(f'"{body}"')


def test_non_finite_and_long_numbers_keep_their_path() -> None:
    value = loads("[##Inf 1.5]")
    assert math.isinf(value[0])
    assert loads("{:a " + "9" * 5000 + "}")[K("a")] == int(Decimal("9" * 5000))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{:a "x\\ty" :b #uuid "6f1c6d4e-8a3b-4c1e-9f0a-2b7d5e8c9a10"}',
         {K("a"): "x\ty", K("b"): uuid.UUID("6f1c6d4e-8a3b-4c1e-9f0a-2b7d5e8c9a10")}),
        ('{:a {:b [1 {:c (2)}]} :d #{:e} :f [] :g ()}',
         {K("a"): {K("b"): [1, {K("c"): (2,)}]}, K("d"): frozenset({K("e")}), K("f"): [],
          K("g"): ()}),
        ('{:a #uuid "not-a-uuid-at-all"}', None),
        ('{:a "\\/"}', None),
        ('{:a "raw\nnewline \\u00e9"}', {K("a"): "raw\nnewline é"}),
    ],
)  # fmt: skip
def test_pairs_with_escaped_strings_uuids_and_openers(text: str, expected: Any) -> None:
    if expected is None:
        with pytest.raises(EdnSyntaxError):
            loads(text)
        return
    assert loads(text) == expected


def test_a_key_and_an_opener_outside_collections() -> None:
    assert list(iter_values(":a {:b 1} :c [2]")) == [K("a"), {K("b"): 1}, K("c"), [2]]
    assert loads("[#_ :a {:b 1}]") == [{K("b"): 1}]
    assert loads("#_ :a {:b 1}") == {K("b"): 1}
    assert loads("[#t :a [1]]") == [Tagged("t", K("a")), [1]]
    with pytest.raises(EdnSyntaxError, match="more than one value") as info:
        loads(":a\n {:b 1}")
    assert (info.value.line, info.value.column) == (2, 2)


def test_large_loads_leave_the_garbage_collector_as_they_found_it() -> None:
    big = "[" + " ".join(['{:a "x" :b [1.5 2.5]}'] * 5000) + "]"
    assert len(big) > 1 << 16
    was_enabled = gc.isenabled()
    try:
        gc.enable()
        assert len(loads(big)) == 5000
        assert gc.isenabled()
        with pytest.raises(EdnSyntaxError):
            loads(big + " }")
        assert gc.isenabled()
        gc.disable()
        assert len(loads(big)) == 5000
        assert not gc.isenabled()
    finally:
        if was_enabled:
            gc.enable()


def test_a_key_before_a_numeric_vector_or_set_keeps_the_whole_vector_path() -> None:
    value = loads("{:v [1.5 2.5] :w [1 2] :s #{1 2} :x [:a 1] :y #{:b} :z [ -1.5]}")
    assert value == {
        K("v"): [1.5, 2.5],
        K("w"): [1, 2],
        K("s"): frozenset({1, 2}),
        K("x"): [K("a"), 1],
        K("y"): frozenset({K("b")}),
        K("z"): [-1.5],
    }
    assert [type(v) for v in value[K("v")]] == [float, float]
