"""Clojure's equality in the reader, the writer and ``equal``: Python's merges stay apart."""

from __future__ import annotations

import pickle
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.edn import (
    BigInt,
    EdnMap,
    EdnSet,
    FrozenMap,
    Keyword,
    Vector,
    dumps,
    equal,
    loads,
)
from garrison.edn._equality import clojure_key
from garrison.exceptions import EdnSyntaxError
from tests.edn._edn_same import explain, same
from tests.edn.clojure_equality_cases import CASES, DUPLICATE, EQUAL_CASES
from tests.edn.edn_strategies import colliding_members, edn_map, edn_set

K = Keyword


@pytest.mark.parametrize(("text", "kept"), CASES)
def test_the_reader_keeps_and_refuses_what_clojure_does(text: str, kept: int) -> None:
    if kept == DUPLICATE:
        with pytest.raises(EdnSyntaxError, match="Duplicate key: ") as info:
            loads(text, strict=True)
        assert (info.value.line, info.value.column) == (1, 1)
        # Lenient: the duplicate is dropped; what is left has none.
        value = loads(text)
        assert same(loads(dumps(value), strict=True), value)
    else:
        value = loads(text, strict=True)
        assert len(value) == kept
        assert same(loads(text), value)
        # Written back, it is the same text up to order, and reads back the same.
        assert same(loads(dumps(value), strict=True), value), explain(loads(dumps(value)), value)
        assert loads(dumps(value, sort_keys=True)) == loads(text)


@pytest.mark.parametrize(("a", "b", "expected"), EQUAL_CASES)
def test_equal_is_clojures_equality(a: str, b: str, expected: bool) -> None:
    assert equal(loads(a), loads(b)) is expected
    assert equal(loads(b), loads(a)) is expected
    assert (clojure_key(loads(a)) == clojure_key(loads(b))) is expected


def test_maps_and_sets_without_a_python_collision_stay_plain() -> None:
    value = loads('{:a 1, 0 "zero", "s" #{1 2 :k}, [1] {:b 2}}')
    assert type(value) is dict
    assert value[K("a")] == 1
    assert value[0] == "zero"
    assert type(value["s"]) is frozenset
    assert value[Vector([1])] == {K("b"): 2}


def test_a_colliding_map_answers_lookups_by_clojure_equality() -> None:
    value = loads("{0 :a, false :b, 0.0 :c, 0M :d, nil :e}")
    assert type(value) is EdnMap
    assert (value[0], value[False], value[0.0], value[Decimal(0)], value[None]) == (
        K("a"),
        K("b"),
        K("c"),
        K("d"),
        K("e"),
    )
    assert value[BigInt(0)] == K("a")  # 0N = 0
    assert value[-0.0] == K("c")  # -0.0 = 0.0
    assert value.get(Fraction(1, 2)) is None
    with pytest.raises(KeyError):
        value[1]
    assert 0 in value
    assert 1 not in value
    assert [] not in value  # a list is a key like any vector: here, absent
    assert list(value) == [0, False, 0.0, Decimal(0), None]
    assert list(value.values()) == [K("a"), K("b"), K("c"), K("d"), K("e")]
    assert dict(value.items()) != value  # the dict merges 0, false, 0.0 and 0M


def test_a_colliding_set_answers_membership_by_clojure_equality() -> None:
    value = loads("#{1 true 1.0 1M 1/2}")
    assert type(value) is EdnSet
    assert len(value) == 5
    assert BigInt(1) in value
    assert 1.0 in value
    assert Decimal("1.00") in value  # 1M = 1.00M
    assert 0.5 not in value
    assert False not in value
    assert list(value) == [1, True, 1.0, Decimal(1), Fraction(1, 2)]


def test_edn_maps_and_sets_compare_by_clojure_equality() -> None:
    a = loads("#{1 true}")
    assert a == loads("#{true 1N}")
    assert a != frozenset({1})
    assert a != loads("#{1.0 true}")
    assert hash(a) == hash(loads("#{true 1N}"))
    assert a <= loads("#{1 true 2}")
    assert not a <= frozenset({1, 2})
    m = loads("{0 :a false :b}")
    assert m == loads("{false :b 0N :a}")
    assert m != {0: K("a")}
    assert m != loads("{0 :a false :c}")
    assert hash(m) == hash(loads("{false :b 0 :a}"))
    # As keys and members of plain maps and sets, they keep their identity.
    outer = loads("{#{1 true} :x, #{1 1.0} :y}")
    assert outer[EdnSet([True, 1])] == K("x")
    assert outer[EdnSet([1.0, 1])] == K("y")


def test_edn_maps_and_sets_are_immutable_and_pickle() -> None:
    m = loads("{0 :a false :b}")
    s = loads("#{0 false}")
    with pytest.raises(AttributeError):
        m.x = 1
    with pytest.raises(AttributeError):
        s.x = 1
    assert same(pickle.loads(pickle.dumps(m)), m)
    assert same(pickle.loads(pickle.dumps(s)), s)
    assert repr(s) == "EdnSet([0, False])"
    assert repr(m) == "EdnMap([(0, Keyword('a')), (False, Keyword('b'))])"


def test_lenient_mode_keeps_the_first_key_with_the_last_value() -> None:
    # Clojure's assoc on an existing key keeps the key and takes the value.
    value = loads("{0 :a, false :b, 0N :c}")
    assert list(value.items()) == [(0, K("c")), (False, K("b"))]
    assert type(next(iter(value))) is int
    assert list(loads("#{0.0 false -0.0}")) == [0.0, False]
    assert str(next(iter(loads("#{1.0M 1.00M}")))) == "1.0"


def test_nested_collisions_stay_apart() -> None:
    value = loads("[#{[1] [true] [1.0]} {{0 1} :a, {false 1} :b} #{#{0 false} #{0}}]")
    assert [len(part) for part in value] == [3, 2, 2]
    assert type(value[0]) is EdnSet
    assert type(value[1]) is EdnMap
    # #{0 false} as a set element, with a value that must be made hashable.
    nested = loads("#{{0 [1], false [2]} 3}")
    assert type(nested) is frozenset
    inner = next(m for m in nested if m != 3)
    assert type(inner) is EdnMap
    assert inner[False] == Vector([2])


def test_duplicate_messages_name_the_duplicate_as_clojure_does() -> None:
    with pytest.raises(EdnSyntaxError, match=r"Duplicate key: 1N \(set element; strict mode\)"):
        loads("#{1 1N}", strict=True)
    with pytest.raises(EdnSyntaxError, match=r"Duplicate key: \[1\] \(strict mode\)") as info:
        loads("{:x 1\n :y {(1) 2, [1] 3}}", strict=True)
    assert (info.value.line, info.value.column) == (2, 5)


_fast = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fast
@given(st.lists(colliding_members, max_size=8), st.booleans())
def test_sets_of_colliding_members_round_trip(members: list[Any], sort_keys: bool) -> None:
    value = edn_set(members)
    text = dumps(value, sort_keys=sort_keys)
    back = loads(text, strict=True)
    assert same(back, value), explain(back, value)
    assert equal(back, value)
    # An EdnSet exactly when Python's == would merge what Clojure keeps apart.
    assert (type(back) is EdnSet) is (len(frozenset(back)) < len(back))


@_fast
@given(
    st.lists(st.tuples(colliding_members, colliding_members | st.integers()), max_size=8),
    st.booleans(),
)
def test_maps_with_colliding_keys_round_trip(entries: list[Any], sort_keys: bool) -> None:
    value = edn_map(entries)
    text = dumps(value, sort_keys=sort_keys)
    back = loads(text, strict=True)
    assert same(back, value), explain(back, value)
    assert equal(back, value)
    assert (type(back) is EdnMap) is (len(dict(back.items())) < len(back))
    if sort_keys:
        assert dumps(back, sort_keys=True) == text


@_fast
@given(st.lists(colliding_members, max_size=8))
def test_a_set_text_with_duplicates_is_refused_strictly_and_collapsed_leniently(
    members: list[Any],
) -> None:
    text = "#{" + " ".join(dumps(m) for m in members) + "}"
    distinct = {clojure_key(m) for m in members}
    if len(distinct) < len(members):
        with pytest.raises(EdnSyntaxError, match="Duplicate key"):
            loads(text, strict=True)
    lenient = loads(text)
    assert same(lenient, edn_set(members)), explain(lenient, edn_set(members))


def test_frozen_map_and_plain_kinds_are_unchanged() -> None:
    assert loads("{[1] {:a 1}}") == {Vector([1]): {K("a"): 1}}
    assert type(next(iter(loads("#{{:a 1}}")))) is FrozenMap
