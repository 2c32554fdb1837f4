"""Differential properties: the C writer's text is the pure writer's, for generated values.

For every generated value and every option set the C writer either returns
exactly the pure encoder's text, or raises the error the pure encoder raises
(same type and message), or hands the value over (``Fallback``); ``dumps``
always returns the pure encoder's text or raises its error.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.edn import BigInt, FrozenMap, Keyword, Symbol, Tagged, Vector, dumps
from garrison.edn._encoder import encode_pure
from garrison.exceptions import EdnEncodeError

from .edn_strategies import values
from .test_edn_cwriter import (
    Number,
    Real,
    Text,
    Things,
    c_encode,
    c_writer,
    codec,  # noqa: F401 - the one-way fixture, overriding the folder's
)


class Opaque:
    """A value with no EDN form: ``default`` must convert it, or the writers refuse it."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Opaque({self.n})"


def _default(obj: Any) -> Any:
    # 0 takes two rounds, 2 becomes a non-finite float, 3 never converts (refused after 8 rounds).
    if isinstance(obj, Opaque):
        return {0: Opaque(1), 1: [obj.n, Keyword("opaque")], 2: math.inf}.get(obj.n, obj)
    raise EdnEncodeError(f"no conversion for {obj!r}")


_texts = st.text(
    alphabet=st.characters(codec="utf-8")
    | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    max_size=12,
)
_plain_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62).map(lambda n: n * 2**70),
    st.integers().map(BigInt),
    st.floats(),
    st.sampled_from([math.inf, -math.inf, math.nan, -0.0, 1e-4, 9.9e-5, 1e16, 5e-324]),
    _texts,
    _texts.map(Text),
    st.integers().map(Number),
    st.floats(allow_nan=False).map(Real),
    st.integers(min_value=0, max_value=3).map(Opaque),
    st.sampled_from([Keyword("embed-token/5fe3"), Symbol("a:"), Keyword("ok"), Symbol("ok")]),
)


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return Vector(_hashable(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return FrozenMap({k: _hashable(v) for k, v in value.items()})
    if isinstance(value, set):
        return frozenset(value)
    if isinstance(value, Tagged):
        return Tagged(value.tag, _hashable(value.value))
    if isinstance(value, float) and math.isnan(value):
        return 0.25
    return value


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = children.filter(lambda v: not isinstance(v, Opaque)).map(_hashable)
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(Things),
        st.lists(children, max_size=5).map(tuple),
        st.lists(keys, max_size=5).map(frozenset),
        st.lists(keys, max_size=5).map(set),
        st.lists(st.tuples(keys, children), max_size=5).map(dict),
        st.lists(st.tuples(keys, children), max_size=5).map(OrderedDict),
        st.builds(Tagged, st.sampled_from(["t", "my.ns/Rec", "1bad", "inst"]), children),
    )


plain_values = st.recursive(_plain_scalars, _containers, max_leaves=20)
options = st.fixed_dictionaries(
    {
        "sort_keys": st.booleans(),
        "strict": st.booleans(),
        "default": st.sampled_from([None, _default]),
    }
)


def _outcome(value: Any, **opts: Any) -> tuple[str, Any]:
    try:
        return ("text", encode_pure(value, **opts))
    except Exception as exc:
        return ("error", (type(exc), str(exc)))


def check(value: Any, opts: dict[str, Any]) -> None:
    """C text == pure text, or the same error, or a hand-over; dumps is the pure outcome."""
    pure = _outcome(value, **opts)
    writer = c_writer()
    c_error: Exception | None = None
    text = None
    try:
        text = c_encode(value, **opts)
    except writer.Fallback:
        pass
    except Exception as exc:
        c_error = exc
    if c_error is not None:
        assert pure[0] == "error", f"C raised {c_error!r:.300}, the pure writer did not"
        # Several bad values in one container may be met in another order.
        assert pure[1][0] is type(c_error)
    elif text is not None:
        assert pure == ("text", text)
    try:
        via_dumps: tuple[str, Any] = ("text", dumps(value, **opts))
    except Exception as exc:
        via_dumps = ("error", (type(exc), str(exc)))
    assert via_dumps == pure


@settings(max_examples=300, deadline=None)
@given(value=values, opts=options)
def test_codec_values_give_the_pure_text(value: Any, opts: dict[str, Any]) -> None:
    check(value, opts)


@settings(max_examples=400, deadline=None)
@given(value=plain_values, opts=options)
def test_plain_python_values_give_the_pure_text_or_error(value: Any, opts: dict[str, Any]) -> None:
    check(value, opts)


@settings(max_examples=100, deadline=None)
@given(
    members=st.lists(
        st.one_of(
            st.integers(-3, 3),
            st.integers(-3, 3).map(BigInt),
            st.sampled_from([0.5, -0.0, math.inf, "1", "", "\ud800", Keyword("a"), Symbol("a")]),
            st.tuples(st.integers(0, 2)),
            st.just(Vector([1])),
            st.just(FrozenMap({Keyword("k"): 1})),
        ),
        max_size=8,
    ),
    sort_keys=st.booleans(),
)
def test_sets_of_mixed_kinds(members: list[Any], sort_keys: bool) -> None:
    for value in (frozenset(members), set(members), {m: m for m in members}):
        check(value, {"sort_keys": sort_keys, "strict": False, "default": None})


@pytest.mark.parametrize("sort_keys", [False, True])
def test_the_writers_agree_without_hand_over_on_codec_data(sort_keys: bool) -> None:
    # The values the codec reads are written by C alone (no Fallback).
    value = {
        Keyword(f"session/s{i}"): {
            Keyword("session/tags"): frozenset({Keyword("a"), Keyword("b"), "c"}),
            Keyword("session/scores"): [0.5 * i, 1.25, 3e-3],
            "raw": ("x\ty", BigInt(i), None, True),
        }
        for i in range(50)
    }
    assert c_encode(value, sort_keys=sort_keys) == encode_pure(value, sort_keys=sort_keys)
