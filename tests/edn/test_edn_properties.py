"""Properties: everything written reads back the same; no text makes the reader misbehave."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import edn_format
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from garrison.edn import Char, Keyword, Symbol, dumps, equal, iter_values, loads
from garrison.exceptions import EdnSyntaxError
from tests.edn._edn_same import explain, same
from tests.edn.edn_strategies import names, values

_fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fast
@given(values)
def test_loads_of_dumps_is_the_same_value(value: Any) -> None:
    back = loads(dumps(value))
    assert same(back, value), explain(back, value)
    assert equal(back, value)  # Clojure's =, as well as the same kinds


@_fast
@given(values)
def test_sorted_output_is_stable_and_reads_back(value: Any) -> None:
    text = dumps(value, sort_keys=True)
    back = loads(text)
    assert same(back, value), explain(back, value)
    assert dumps(back, sort_keys=True) == text


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, max_size=4))
def test_a_stream_of_values_reads_back_in_order(stream: list[Any]) -> None:
    text = "\n".join(dumps(v) for v in stream)
    back = list(iter_values(text))
    assert len(back) == len(stream)
    assert all(same(b, v) for b, v in zip(back, stream, strict=True))


_EDN_ALPHABET = st.sampled_from(
    [*"()[]{}#_:;\"\\ ,\n\r\t0123456789.+-eEMNr/xabcnilftrue^@`~'=?!*&%", "##", "#:", "#_"]
)
_edn_like = st.lists(_EDN_ALPHABET, max_size=60).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=80), _edn_like))
@example("#:")
@example('"\\u12')
@example("\\")
@example("#inst 1")
@example('#inst "2024-02-30T00:00:00Z"')
@example("1" * 5000)
@example("{" * 3000)
def test_any_text_either_reads_or_raises_edn_syntax_error(text: str) -> None:
    try:
        loads(text)
    except EdnSyntaxError as err:
        error: EdnSyntaxError | None = err
    else:
        error = None
    assert error is None or (error.line >= 1 and error.column >= 1)


@settings(max_examples=150, deadline=None)
@given(values, st.data())
def test_damaged_edn_raises_only_edn_syntax_error(value: Any, data: st.DataObject) -> None:
    text = dumps(value)
    at = data.draw(st.integers(min_value=0, max_value=len(text)))
    cut = data.draw(st.integers(min_value=0, max_value=3))
    insert = data.draw(st.sampled_from(["", "(", "]", "}", '"', "#", "\\", ":", " ", "#_", "N"]))
    damaged = text[:at] + insert + text[at + cut :]
    with contextlib.suppress(EdnSyntaxError):
        loads(damaged)


@pytest.mark.parametrize(
    "text",
    [
        '"' + "\\" * 20001,
        '"' + "a\\" * 20000,
        ";" * 100_000,
        "#:" * 20_000,
        "#_" * 20_000,
        "[" * 100_000,
        "#a " * 20_000,
        "(" + ":a " * 100_000,
        "1" * 4000 + "x",
        "\\" + "a" * 100_000,
    ],
    ids=lambda t: repr(t[:6]),
)
def test_adversarial_inputs_fail_fast(text: str) -> None:
    start = time.perf_counter()
    with pytest.raises(EdnSyntaxError):
        loads(text)
    assert time.perf_counter() - start < 2.0


# --- differential: edn_format as a second opinion on inputs it handles right ---

_plain_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters='\\"'),
    max_size=10,
)
_plain_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _plain_text,
    names.map(Keyword),
    names.map(Symbol),
)
_plain_values = st.recursive(
    _plain_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.one_of(names.map(Keyword), _plain_text), children, max_size=4),
    ),
    max_leaves=15,
)


def _to_edn_format(value: Any) -> Any:
    if isinstance(value, Keyword):
        return edn_format.Keyword(value.text)
    if isinstance(value, Symbol):
        return edn_format.Symbol(value.text)
    if isinstance(value, list):
        return [_to_edn_format(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_edn_format(v) for v in value)
    if isinstance(value, dict):
        return {_to_edn_format(k): _to_edn_format(v) for k, v in value.items()}
    return value


def _from_edn_format(value: Any) -> Any:
    if isinstance(value, edn_format.Keyword):
        return Keyword(value.name)
    if isinstance(value, edn_format.Symbol):
        return Symbol(value.name)
    if isinstance(value, edn_format.Char):
        return Char(str(value))
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return tuple(_from_edn_format(v) for v in value)
    if isinstance(value, Mapping):  # edn_format.ImmutableDict
        return {_from_edn_format(k): _from_edn_format(v) for k, v in value.items()}
    if isinstance(value, Sequence):  # edn_format.ImmutableList
        return [_from_edn_format(v) for v in value]
    if isinstance(value, frozenset):
        return frozenset(_from_edn_format(v) for v in value)
    return value


@_fast
@given(_plain_values)
def test_we_read_what_edn_format_writes(value: Any) -> None:
    text = edn_format.dumps(_to_edn_format(value))
    back = loads(text)
    assert same(back, value), f"{text!r}: " + explain(back, value)


@_fast
@given(_plain_values)
def test_edn_format_reads_what_we_write(value: Any) -> None:
    text = dumps(value)
    theirs = _from_edn_format(edn_format.loads(text))
    assert same(theirs, value), f"{text!r}: " + explain(theirs, value)


@pytest.mark.parametrize(
    "text",
    [
        '{:user/id 1, :tags #{"a" "b"}, :at #inst "2024-01-02T03:04:05.123-00:00"}',
        '[1 2.5 -3 "x\\ny" :k sym nil true false () (1 (2)) {:a {:b [3]}}]',
        '#uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"',
        "[\\a \\newline \\space \\tab 1.50M]",
    ],
)
def test_both_codecs_agree_on_typical_documents(text: str) -> None:
    ours = loads(text)
    theirs = _from_edn_format(edn_format.loads(text))
    assert same(ours, theirs), explain(ours, theirs)
