"""The SQLite value format: plain JSON stays plain; everything else reads back exactly."""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import uuid
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from garrison.stores._values import decode_value, encode_value, upgrade_format_1
from tests.stores.value_strategies import json_values, object_key_lookalikes, same, values


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
        (
            {Keyword("session/user-id"): "u1", Keyword("n"): 1},
            '{":session/user-id":"u1",":n":1}',
        ),
        ({Keyword("a"): 1, "b": 2}, '{":a":1,"b":2}'),
        ({":a": 1}, '{"#map":[[":a",1]]}'),
        ({Keyword("a"): 1, ":b": 2}, '{"#map":[[{"#k":"a"},1],[":b",2]]}'),
        ({Keyword("#k"): 1}, '{":#k":1}'),
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


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@given(
    st.dictionaries(
        st.from_regex(r"[a-z#:][a-z0-9./#:-]{0,8}", fullmatch=True).map(Keyword)
        | object_key_lookalikes
        | st.text(max_size=4),
        values,
        max_size=5,
    )
)
@settings(max_examples=150)
def test_maps_with_keyword_and_string_keys_round_trip_without_confusing_them(
    value: dict[Any, Any],
) -> None:
    text = encode_value(value)
    back = decode_value(text)
    assert same(back, value)
    node = orjson.loads(text)
    if all(type(key) is Keyword or not key.startswith(":") for key in value):
        # An object, each keyword key spelled with its colon, each string key as is.
        spelled = {":" + key.text if type(key) is Keyword else key for key in value}
        escaped = len(spelled) == 1 and next(iter(spelled)).startswith("#")
        assert set(node["#esc"] if escaped else node) == spelled
    else:
        assert set(node) == {"#map"}


def test_sqlite_json_functions_reach_keyword_keyed_attributes() -> None:
    value = loads('{:session/id "s1" :session/user-id "u1" :session/tags [:a :b] "n" 2}')
    conn = sqlite3.connect(":memory:")
    row = conn.execute(
        """SELECT json_extract(?1, '$.":session/user-id"'), json_extract(?1, '$.n'),
                  json_extract(?1, '$.":session/tags"[1]')""",
        (encode_value(value),),
    ).fetchone()
    assert row == ("u1", 2, '{"#k":"b"}')


def _format_1(node: Any) -> Any:
    """The format-1 JSON structure of a format-2 one: the reference the upgrade inverts.

    Format 1 kept a dict as an object only when every key was a string (any
    string), and every other dict as ``#map`` pairs.
    """
    if type(node) is list:
        return [_format_1(item) for item in node]
    if type(node) is not dict:
        return node
    if len(node) == 1 and next(iter(node)).startswith("#"):
        ((marker, payload),) = node.items()
        if marker == "#esc":
            return {marker: {key: _format_1(item) for key, item in payload.items()}}
        if marker == "#map" and all(type(key) is str for key, _ in payload):
            return {key: _format_1(item) for key, item in payload}
        return {marker: _format_1(payload)}
    if any(key.startswith(":") for key in node):
        return {
            "#map": [
                [{"#k": key[1:]} if key.startswith(":") else key, _format_1(item)]
                for key, item in node.items()
            ]
        }
    return {key: _format_1(item) for key, item in node.items()}


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@given(values)
@settings(max_examples=200)
def test_the_upgrade_turns_every_format_1_text_into_the_format_2_text(value: Any) -> None:
    text = encode_value(value)
    old = orjson.dumps(_format_1(orjson.loads(text))).decode()
    upgraded = upgrade_format_1(old)
    assert upgraded is not None
    assert same(decode_value(upgraded), value)
    if not any(marker in text for marker in ("#set", "#mutset", "#eset")):  # reorderable
        assert upgraded == text


def test_the_upgrade_reads_colon_keys_of_format_1_as_strings() -> None:
    assert upgrade_format_1('{":a":1,"b":{":c":2}}') == encode_value({":a": 1, "b": {":c": 2}})
    assert upgrade_format_1('{"#map":[[{"#k":"a"},{":b":1}]]}') == '{":a":{"#map":[[":b",1]]}}'
    assert upgrade_format_1(None) is None
