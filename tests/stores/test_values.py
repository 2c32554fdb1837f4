"""The SQLite value format: plain JSON stays plain; everything else reads back exactly."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from garrison.edn import (
    BigInt,
    Char,
    EdnMap,
    EdnSet,
    FrozenMap,
    Keyword,
    Symbol,
    Tagged,
    Vector,
    equal,
    loads,
)
from garrison.exceptions import EdnEncodeError, StoreError
from garrison.stores._values import decode_value, encode_value
from tests.stores.value_strategies import json_values, same, values


# Hypothesis warns when it builds the repr of a large recursive strategy; the
# strategy is large on purpose (every value kind), and warnings are errors here.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@given(values)
@settings(max_examples=200)
def test_every_value_round_trips_exactly(value: Any) -> None:
    back = decode_value(encode_value(value))
    assert same(back, value)
    assert equal(back, value)  # Clojure's =, as well as the same types


@given(json_values)
def test_plain_json_is_stored_as_plain_json(value: Any) -> None:
    text = encode_value(value)
    assert orjson.loads(text) == value
    assert text == orjson.dumps(value).decode()


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (Keyword("user/name"), '{"#k":"user/name"}'),
        (Symbol("clojure.core/inc"), '{"#sym":"clojure.core/inc"}'),
        (Char("a"), '{"#char":"a"}'),
        ((1, 2), '{"#list":[1,2]}'),
        (Vector([1]), '{"#vec":[1]}'),
        (frozenset({1}), '{"#set":[1]}'),
        ({1}, '{"#mutset":[1]}'),
        ({1: "a"}, '{"#map":[[1,"a"]]}'),
        (FrozenMap({"a": 1}), '{"#fmap":[["a",1]]}'),
        (EdnSet([1, True, 1.0]), '{"#eset":[1,true,1.0]}'),
        (EdnMap([(0, "a"), (False, "b")]), '{"#emap":[[0,"a"],[false,"b"]]}'),
        (BigInt(42), '{"#N":"42"}'),
        (2**64, '{"#int":"18446744073709551616"}'),
        (math.inf, '{"#float":"Infinity"}'),
        (Fraction(22, 7), '{"#ratio":"22/7"}'),
        (Decimal("1.50"), '{"#dec":"1.50"}'),
        (
            dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            '{"#inst":"2024-05-01T12:00:00.250000+02:00"}',
        ),
        (dt.date(2024, 5, 1), '{"#date":"2024-05-01"}'),
        (uuid.UUID(int=1), '{"#uuid":"00000000-0000-0000-0000-000000000001"}'),
        (Tagged("my/rec", {"a": 1}), '{"#tag":["my/rec",{"a":1}]}'),
        ({"#k": "not a keyword"}, '{"#esc":{"#k":"not a keyword"}}'),
        ({"n": 1, "kw": Keyword("a")}, '{"n":1,"kw":{"#k":"a"}}'),
    ],
)
def test_documented_markers(value: Any, stored: str) -> None:
    assert encode_value(value) == stored
    assert same(decode_value(stored), value)


@pytest.mark.parametrize(
    "text",
    [
        "#{1 true 1.0 1M 1/2}",
        "{0 :a false :b 0.0 :c 0M :d nil :e}",
        "#{nil false 0.5M}",
        "#{0 false 0.51}",
        "[#{[1] [true]} {#{0 false} 1, #{0} 2} #{{0 [1] false [2]} 3}]",
        "{:k #{-0.0 false 0N}}",
    ],
)
def test_values_python_would_merge_are_stored_and_read_back_whole(text: str) -> None:
    value = loads(text)
    back = decode_value(encode_value(value))
    assert same(back, value)
    assert encode_value(back) == encode_value(value)


def test_stored_sets_and_maps_are_never_merged_on_reading() -> None:
    # Written by hand or by an older garrison: members Python's == merges
    # still come back apart, as Clojure's = keeps them.
    assert same(decode_value('{"#set":[1,true,1.0]}'), EdnSet([1, True, 1.0]))
    assert same(decode_value('{"#mutset":[0,false]}'), EdnSet([0, False]))
    assert same(decode_value('{"#map":[[0,"a"],[false,"b"]]}'), EdnMap([(0, "a"), (False, "b")]))
    assert same(decode_value('{"#fmap":[[1,"a"],[1.0,"b"]]}'), EdnMap([(1, "a"), (1.0, "b")]))
    # True duplicates (by Clojure's =) keep one member, the last value of a key.
    assert same(decode_value('{"#set":[1,1]}'), frozenset({1}))
    assert same(decode_value('{"#map":[[1,"a"],[1,"b"]]}'), {1: "b"})


def test_a_user_dict_shaped_like_a_marker_is_escaped_and_comes_back() -> None:
    value = {"#k": [Keyword("a"), {"#esc": 1}]}
    assert decode_value(encode_value(value)) == value
    assert type(decode_value(encode_value(value))["#k"][0]) is Keyword


def test_deep_nesting_beyond_orjson_limit_still_round_trips() -> None:
    value: Any = "leaf"
    for _ in range(300):
        value = [value]
    assert decode_value(encode_value(value)) == value


def test_unknown_marker_is_refused_not_guessed() -> None:
    with pytest.raises(StoreError, match="newer garrison"):
        decode_value('{"#future":1}')


def test_value_without_edn_form_is_refused() -> None:
    with pytest.raises(EdnEncodeError, match="bytes"):
        encode_value(b"raw")


def test_corrupt_text_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="not valid JSON"):
        decode_value("{")
