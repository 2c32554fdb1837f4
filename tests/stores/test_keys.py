"""Key texts: one canonical text per EDN key."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.edn import FrozenMap, Keyword, Vector, dumps, loads
from garrison.exceptions import EdnEncodeError, StoreError
from garrison.stores._keys import (
    StringKey,
    edn_key,
    key_namespace,
    key_prefix,
    key_text,
    lookup_text,
)


def test_a_str_key_and_its_keyword_are_the_same_entry() -> None:
    assert key_text("session/abc") == key_text(Keyword("session/abc")) == "session/abc"
    assert key_namespace("session/abc") == "session"


def test_a_string_key_stays_distinct_from_the_keyword_of_the_same_text() -> None:
    assert key_text(StringKey("session/abc")) != key_text("session/abc")
    assert edn_key(key_text(StringKey("session/abc"))) == "session/abc"


def test_maps_and_sets_as_keys_have_one_text_whatever_their_insertion_order() -> None:
    forward = FrozenMap({Keyword(f"k{i}"): i for i in range(20)})
    backward = FrozenMap({Keyword(f"k{i}"): i for i in reversed(range(20))})
    assert key_text(forward) == key_text(backward)
    assert key_text(frozenset(range(50))) == key_text(frozenset(reversed(range(50))))
    assert edn_key(key_text(forward)) == forward


def test_non_keyword_keys_round_trip() -> None:
    for key in (42, Vector([1, Keyword("a")]), StringKey("plain")):
        assert edn_key(key_text(key)) == key
        assert key_namespace(key_text(key)) is None


def test_a_keyword_may_be_spelt_with_its_colon() -> None:
    assert key_text(":session/abc") == lookup_text(":session/abc") == "session/abc"
    assert key_prefix(":session/") == key_prefix("session/") == "session/"
    assert key_text(":a:b") == "a:b"  # only the leading colon is the keyword's


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "is empty"),
        (":", "is empty"),
        ("ns/na me", "contains ' ' at position 6"),
        ("::session/x", "starts with '::'"),
        (":ns/a,b", "contains ',' at position 6"),
        ("a\u00a0b", "contains '\\xa0' at position 2"),
        (Keyword("k w"), "contains ' ' at position 2"),
        (Keyword(":x"), "contains ':' at position 1"),
        ('#edn "x" ', "not in its canonical form"),
        ("#edn {:b 1 :a 2}", "not in its canonical form '#edn {:a 2, :b 1}'"),
        ("#edn {:a", "is not EDN"),
    ],
)
def test_a_key_with_no_edn_form_is_refused_naming_it(key: object, reason: str) -> None:
    with pytest.raises(StoreError, match=re.escape(reason)) as refused:
        key_text(key)
    assert refused.value.key is not None


# Unicode text, plus what EDN treats specially: whitespace, delimiters, ':', a surrogate.
_KEY_CHARACTERS = st.characters(codec="utf-8") | st.sampled_from(
    ' \t\n,;()[]{}"\\:#/\xa0\u2028\ud800'
)


@settings(max_examples=300, deadline=None)
@given(st.text(_KEY_CHARACTERS, min_size=1, max_size=12))
def test_key_text_accepts_exactly_the_keywords_the_edn_writer_writes_and_reads_back(
    text: str,
) -> None:
    try:
        written = dumps(Keyword(text))
    except EdnEncodeError:
        written = None
    try:
        accepted = key_text(Keyword(text))
    except StoreError:
        accepted = None
    assert (accepted is None) == (written is None), (text, written)
    if accepted is not None:
        assert accepted == text
        assert written is not None
        assert loads(written) == Keyword(text)  # the file reads back the same key
