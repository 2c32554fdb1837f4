"""Key texts: one canonical text per EDN key."""

from __future__ import annotations

from garrison.stores._keys import StringKey, edn_key, key_namespace, key_text
from garrison.stores.edn import FrozenMap, Keyword, Vector


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
